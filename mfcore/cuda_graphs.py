"""CUDA graphs for fixed-shape device work called many times: the second call of a shape captures it, later calls
replay it (one launch instead of one per kernel).

A :class:`GraphRunner` runs a callable that reads and writes only static buffers (tensors allocated outside it, whose
addresses stay fixed) under a key that names its shapes. A key's first call runs eagerly (one-off shapes never pay a
capture); its second is warmed up on a side stream and captured (torch's CUDA-graph notes); every later call replays
the graph. All graphs of a runner share one memory pool: they never run at once and read no intermediate of another,
so their temporaries may share memory (https://github.com/pytorch/pytorch/pull/166975). A capture that fails warns
and leaves the runner eager. Off the GPU (``enabled=False``) every call runs eagerly.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Callable, Hashable

import torch


class LRU(OrderedDict):
    """A dict that keeps its ``size`` most recently used entries."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value):
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value

    def take(self, key):
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None


class GraphRunner:
    """Runs ``fn`` under ``key``: eagerly at the key's first call, from a CUDA graph captured at its second after."""

    def __init__(self, device, enabled: bool = True, max_graphs: int = 32):
        self.device = torch.device(device)
        self.enabled = enabled and self.device.type == "cuda"
        self.graphs = LRU(max_graphs)
        self.captured = 0  # graphs captured so far
        self._seen: dict[Hashable, int] = {}
        self._pool = None

    def run(self, key: Hashable, fn: Callable[[], object]) -> None:
        """Run ``fn`` (which must read and write only static buffers) for ``key``."""
        graph = self.graphs.take(key)
        if graph is not None:
            graph.replay()
            return
        self._seen[key] = self._seen.get(key, 0) + 1
        if not self.enabled or self._seen[key] < 2:
            fn()
            return
        try:
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):  # warm-up on a side stream, as torch's CUDA-graph notes ask
                fn()
            torch.cuda.current_stream(self.device).wait_stream(stream)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                fn()
        except Exception as err:  # noqa: BLE001 — a capture that fails must not fail the work
            warnings.warn(f"CUDA graph capture failed ({type(err).__name__}: {err}); running eagerly from now on",
                          RuntimeWarning, stacklevel=3)
            self.enabled = False
            torch.cuda.synchronize(self.device)
            fn()
            return
        self.graphs.put(key, graph)
        self.captured += 1
        graph.replay()

    def forget(self, keep: Callable[[Hashable], bool]) -> None:
        """Drop the graphs whose key ``keep`` rejects (their static buffers are gone)."""
        for key in [k for k in self.graphs if not keep(k)]:
            del self.graphs[key]
