"""The third-party message filters: precise, and installed only on request."""

import logging
import warnings

import pytest

from torchgeo_stars.quiet import quiet_third_party

TIP = (
    '💡 Tip: For seamless cloud logging and experiment tracking, try installing '
    '[litlogger](https://pypi.org/project/litlogger/) to enable LitLogger.'
)
LEAFSPEC = (
    '`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, '
    'TreeSpec) and treespec.is_leaf()` instead.'
)


def test_lightning_tips_are_dropped_and_other_records_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger('lightning.pytorch.utilities.rank_zero')
    filters = list(logger.filters)
    try:
        with warnings.catch_warnings():
            quiet_third_party()
            quiet_third_party()  # idempotent
        ours = [
            f for f in logger.filters if type(f).__module__ == 'torchgeo_stars.quiet'
        ]
        assert len(ours) == 1
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info(TIP)
            logger.info('GPU available: False, used: False')
            logger.warning(TIP)  # not the INFO tip: kept
        messages = [record.getMessage() for record in caplog.records]
        assert messages == ['GPU available: False, used: False', TIP]
    finally:
        logger.filters[:] = filters


def test_only_the_leafspec_warning_of_lightning_is_ignored() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        quiet_third_party()
        for module in (
            'lightning.pytorch.utilities._pytree',
            'pytorch_lightning.utilities._pytree',
        ):
            warnings.warn_explicit(LEAFSPEC, FutureWarning, 'x.py', 1, module=module)
        warnings.warn_explicit(LEAFSPEC, FutureWarning, 'x.py', 1, module='mine')
        warnings.warn_explicit(
            'something else is deprecated',
            FutureWarning,
            'x.py',
            1,
            module='lightning.pytorch.utilities._pytree',
        )
        warnings.warn_explicit(
            LEAFSPEC,
            UserWarning,
            'x.py',
            1,
            module='lightning.pytorch.utilities._pytree',
        )
    assert [(str(w.message), w.category) for w in caught] == [
        (LEAFSPEC, FutureWarning),
        ('something else is deprecated', FutureWarning),
        (LEAFSPEC, UserWarning),
    ]


def test_the_tasks_own_batch_hook_note_is_not_shown() -> None:
    from lightning.pytorch import LightningDataModule, Trainer
    from lightning.pytorch.trainer.connectors import data_connector
    from torch.utils.data import DataLoader

    from tests.tasks.helpers import random_batch, tiny_task

    class Batches(LightningDataModule):
        def train_dataloader(self) -> DataLoader[dict[str, object]]:
            batches = [random_batch(batch_size=2, size=16)]
            return DataLoader(batches, batch_size=None)  # type: ignore[arg-type]

    trainer = Trainer(
        fast_dev_run=True,
        accelerator='cpu',
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    # Lightning warns once per process: forget earlier warnings.
    data_connector.warning_cache.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        quiet_third_party()
        trainer.fit(tiny_task(), datamodule=Batches())
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if 'on_before_batch_transfer' in m], messages
    data_connector.warning_cache.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        Trainer(
            fast_dev_run=True,
            accelerator='cpu',
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        ).fit(tiny_task(), datamodule=Batches())
    # Without the filters Lightning does warn: the filter is what hides it.
    assert [w for w in caught if 'on_before_batch_transfer' in str(w.message)]
