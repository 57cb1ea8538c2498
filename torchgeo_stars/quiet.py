"""The one place where third-party messages the project cannot fix are filtered.

The command line (:func:`torchgeo_stars.main.main`) and the demo call
:func:`quiet_third_party` before they start. Each filter names the message, its
category (warning class or log level) and the module that emits it, so nothing
else is hidden; messages the project can avoid are avoided where they arise
instead (e.g. the demo sets ``log_every_n_steps`` to fit its short epochs and
passes ``weights_only`` to ``Trainer.save_checkpoint``).

Filtered:

* Lightning's advertising tips (``💡 Tip: ... litlogger`` / ``litmodels``),
  logged at level INFO through ``lightning.pytorch.utilities.rank_zero``;
* PyTorch's ``FutureWarning`` "`isinstance(treespec, LeafSpec)` is deprecated",
  raised when Lightning's ``lightning.pytorch.utilities._pytree`` builds a
  ``LeafSpec`` (once per stage); Lightning has to change that call;
* Lightning's note that the task's ``on_before_batch_transfer`` is used
  although a datamodule is passed (``lightning.pytorch.trainer.connectors.
  data_connector``): no datamodule of the package defines that hook, and the
  task uses it on purpose, to check the labels on the host before they go to
  an accelerator.

The filters are installed on request, never on import: importing the package
leaves a host application's warning and logging set-up alone.
"""

import logging
import re
import warnings

#: The loggers Lightning's ``rank_zero_info`` writes through.
LIGHTNING_RANK_ZERO_LOGGERS = (
    'lightning.pytorch.utilities.rank_zero',
    'lightning.fabric.utilities.rank_zero',
    'pytorch_lightning.utilities.rank_zero',
    'lightning_fabric.utilities.rank_zero',
)

#: Lightning's tips advertising its cloud products.
LIGHTNING_TIP = re.compile(r'^💡 Tip: .*\b(litlogger|litmodels)\b', re.DOTALL)

#: PyTorch's deprecation of ``LeafSpec``, triggered inside Lightning.
LEAFSPEC_MESSAGE = r'`isinstance\(treespec, LeafSpec\)` is deprecated'

#: Modules that trigger it (the two distributions of Lightning).
LEAFSPEC_MODULES = r'(lightning\.pytorch|pytorch_lightning)\.utilities\._pytree'


#: Lightning's note about the task's own ``on_before_batch_transfer``.
HOOK_MESSAGE = r'You have overridden `on_before_batch_transfer` in `LightningModule`'

#: Module that emits it (the two distributions of Lightning).
HOOK_MODULES = (
    r'(lightning\.pytorch|pytorch_lightning)\.trainer\.connectors\.data_connector'
)


class _DropLightningTips(logging.Filter):
    """Drop Lightning's product tips; let every other record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether *record* is kept.

        Args:
            record: A log record of one of :data:`LIGHTNING_RANK_ZERO_LOGGERS`.

        Returns:
            False for an INFO record that is one of Lightning's product tips.
        """
        if record.levelno != logging.INFO or not isinstance(record.msg, str):
            return True
        return LIGHTNING_TIP.match(record.msg) is None


_TIP_FILTER = _DropLightningTips()


def quiet_third_party() -> None:
    """Install the filters listed in the module docstring (idempotent)."""
    for name in LIGHTNING_RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _TIP_FILTER not in logger.filters:
            logger.addFilter(_TIP_FILTER)
    warnings.filterwarnings(
        'ignore',
        message=LEAFSPEC_MESSAGE,
        category=FutureWarning,
        module=LEAFSPEC_MODULES,
    )
    warnings.filterwarnings(
        'ignore', message=HOOK_MESSAGE, category=UserWarning, module=HOOK_MODULES
    )
