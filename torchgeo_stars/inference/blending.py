"""Blending overlapping window predictions with bounded memory.

Windows are visited in row-major order. Their weighted values are added into
small square accumulation blocks that are created when a window first reaches
them; a block is handed back (and forgotten) as soon as the last window that
touches it has been added. Only the blocks under the current row of windows
and the overlap band below it are ever held, so memory depends on the window
size and the raster's width, never on its height; nothing of the raster as a
whole is kept.

Every pixel gets ``sum_t w_t v_t`` over the windows ``t`` that cover it, in the
same order whatever the tiling, so that ``sum(w v) / sum(w)`` equals ``v``
exactly (up to float rounding) when every window predicts the same ``v``.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Array = np.typing.NDArray[np.float32]


@dataclass(frozen=True)
class BlendedRun:
    """Finished, horizontally contiguous blocks of one block row.

    Attributes:
        row: First row, relative to the blended region.
        col: First column, relative to the blended region.
        values: ``(C, h, w)`` accumulated sums (zero where no window reached).
    """

    row: int
    col: int
    values: Array


def _last_window(
    length: int, block: int, origins: Sequence[int], patch_size: int
) -> list[int]:
    """For each block along an axis, the last window index that touches it."""
    last: list[int] = []
    for index in range(math.ceil(length / block)):
        start, stop = index * block, min((index + 1) * block, length)
        touching = [
            i
            for i, origin in enumerate(origins)
            if origin < stop and origin + patch_size > start
        ]
        last.append(max(touching) if touching else -1)
    return last


class StreamingBlender:
    """Accumulate weighted window values block by block and release them early.

    Args:
        height: Rows of the region being predicted.
        width: Columns of the region.
        row_origins: First row of each row of windows, relative to the region
            (may be negative or run past its end; what falls outside is dropped).
        col_origins: First column of each column of windows.
        patch_size: Window side.
        channels: Number of accumulated channels.
        block: Side of the accumulation blocks.
    """

    def __init__(
        self,
        height: int,
        width: int,
        row_origins: Sequence[int],
        col_origins: Sequence[int],
        patch_size: int,
        channels: int,
        block: int = 64,
    ) -> None:
        self.height = height
        self.width = width
        self.patch_size = patch_size
        self.channels = channels
        self.block = block
        self.num_cols = len(col_origins)
        last_row = _last_window(height, block, row_origins, patch_size)
        last_col = _last_window(width, block, col_origins, patch_size)
        last = np.array(
            [
                [r * self.num_cols + c if r >= 0 and c >= 0 else -1 for c in last_col]
                for r in last_row
            ],
            dtype=np.int64,
        ).reshape(len(last_row), len(last_col))
        order = np.argsort(last, axis=None, kind='stable')
        self._order = np.stack(np.unravel_index(order, last.shape), axis=1)
        self._last = last.ravel()[order]
        self._cursor = 0
        self._blocks: dict[tuple[int, int], Array] = {}

    @property
    def held_blocks(self) -> int:
        """Number of accumulation blocks currently in memory."""
        return len(self._blocks)

    def _block_shape(self, block_row: int, block_col: int) -> tuple[int, int]:
        """Rows and columns of a block (edge blocks are smaller)."""
        rows = min(self.block, self.height - block_row * self.block)
        cols = min(self.block, self.width - block_col * self.block)
        return rows, cols

    def add(self, row: int, col: int, values: Array) -> None:
        """Add a window's weighted values.

        Args:
            row: Window's first row, relative to the region.
            col: Window's first column.
            values: ``(C, P, P)`` values already multiplied by the window weight.
        """
        size = values.shape[-1]
        row0, row1 = max(row, 0), min(row + values.shape[-2], self.height)
        col0, col1 = max(col, 0), min(col + size, self.width)
        for block_row in range(row0 // self.block, math.ceil(row1 / self.block)):
            top = block_row * self.block
            r0, r1 = max(row0, top), min(row1, top + self.block)
            for block_col in range(col0 // self.block, math.ceil(col1 / self.block)):
                left = block_col * self.block
                c0, c1 = max(col0, left), min(col1, left + self.block)
                key = (block_row, block_col)
                target = self._blocks.get(key)
                if target is None:
                    rows, cols = self._block_shape(block_row, block_col)
                    target = np.zeros((self.channels, rows, cols), dtype=np.float32)
                    self._blocks[key] = target
                target[:, r0 - top : r1 - top, c0 - left : c1 - left] += values[
                    :, r0 - row : r1 - row, c0 - col : c1 - col
                ]

    def finish(self, window_index: int) -> list[BlendedRun]:
        """Release the blocks that no window after *window_index* touches.

        Args:
            window_index: Row-major index of the last window added (or skipped);
                ``-1`` releases blocks no window touches.

        Returns:
            Runs of released blocks, in the order they were released.
        """
        runs: list[BlendedRun] = []
        pending: list[tuple[int, int, Array]] = []

        def flush() -> None:
            if pending:
                block_row, block_col, _ = pending[0]
                values = np.concatenate([p[2] for p in pending], axis=-1)
                runs.append(
                    BlendedRun(block_row * self.block, block_col * self.block, values)
                )
                pending.clear()

        while self._cursor < len(self._last) and self._last[self._cursor] <= (
            window_index
        ):
            block_row, block_col = (int(v) for v in self._order[self._cursor])
            self._cursor += 1
            values = self._blocks.pop((block_row, block_col), None)
            if values is None:
                rows, cols = self._block_shape(block_row, block_col)
                values = np.zeros((self.channels, rows, cols), dtype=np.float32)
            if pending and not (
                pending[-1][0] == block_row and pending[-1][1] == block_col - 1
            ):
                flush()
            pending.append((block_row, block_col, values))
        flush()
        return runs

    @property
    def done(self) -> bool:
        """Whether every block has been released."""
        return self._cursor == len(self._last)
