"""PyTorch adapters: DataLoader workers x simulated DDP ranks see every sample exactly once, and
HDF5 files are opened lazily inside each worker (SPEC §5)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

import lrbench  # noqa: E402
from lrbench.generate import generate  # noqa: E402
from lrbench.torch_data import SplitDataset, StreamDataset  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    task = lrbench.get_task("cumsum", length=16)
    directory = tmp_path_factory.mktemp("ds") / "cumsum"
    generate(task, directory, sizes={"val": 23}, shard_size=5)
    return task, directory


def indices_seen(loaders):
    seen = []
    for loader in loaders:
        for batch in loader:
            seen += batch["index"].tolist()
    return seen


@pytest.mark.parametrize("workers", [0, 2])
def test_split_dataset_ranks_and_workers_cover_each_sample_once(dataset, workers):
    task, directory = dataset
    parts = [SplitDataset(directory, "val", rank=r, world_size=2) for r in range(2)]
    assert sorted(len(p) for p in parts) == [11, 12]
    loaders = [DataLoader(p, batch_size=4, num_workers=workers, collate_fn=p.collate) for p in parts]
    seen = indices_seen(loaders)
    assert sorted(seen) == list(range(23))
    batch = next(iter(loaders[1]))
    assert batch["inputs"].dtype == torch.float32 and batch["inputs"].shape == (4, 16, 3)
    i = int(batch["index"][2])
    assert np.array_equal(batch["targets"][2].numpy(), task.sample(i, "val", 0)["targets"])


def test_files_are_opened_lazily_per_worker(dataset):
    _, directory = dataset
    ds = SplitDataset(directory, "val")
    assert ds.view._files == {}, "nothing is opened before the first read"
    ds[0]
    assert len(ds.view._files) == 1
    loader = DataLoader(ds, batch_size=8, num_workers=2, collate_fn=ds.collate)
    assert sorted(indices_seen([loader])) == list(range(23)), "workers reopen the files they need"


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_ranks_and_workers_cover_each_index_once(workers):
    task = lrbench.get_task("shift", length=16)
    parts = [StreamDataset(task, "train", seed=4, start=5, stop=42, rank=r, world_size=2) for r in range(2)]
    loaders = [DataLoader(p, batch_size=3, num_workers=workers, collate_fn=p.collate) for p in parts]
    seen = indices_seen(loaders)
    assert sorted(seen) == list(range(5, 42))
    batch = next(iter(loaders[0]))
    i = int(batch["index"][1])
    assert np.array_equal(batch["inputs"][1].numpy(), task.sample(i, "train", 4)["inputs"])


def test_endless_stream_keeps_going():
    task = lrbench.get_task("cumsum", length=16)
    loader = DataLoader(StreamDataset(task), batch_size=5, num_workers=0)
    it = iter(loader)
    seen = [next(it)["index"].tolist() for _ in range(30)]
    assert seen[-1] == list(range(145, 150))


def test_ragged_fields_are_padded_with_their_pad_value():
    from lrbench.registry import Feature
    from lrbench.torch_data import pad_collate

    features = {"inputs": Feature("uint8", (8,), ragged=True, pad=0),
                "targets": Feature("int8", (8,), ragged=True, pad=-100)}
    batch = [{"inputs": torch.tensor([3, 4, 5]), "targets": torch.tensor([-100, -100, 7])},
             {"inputs": torch.tensor([1]), "targets": torch.tensor([2])}]
    out = pad_collate(features)(batch)
    assert out["inputs"].tolist() == [[3, 4, 5], [1, 0, 0]]
    assert out["targets"].tolist() == [[-100, -100, 7], [2, -100, -100]]
    assert out["lengths"].tolist() == [3, 1]


def test_bad_rank():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\)"):
        StreamDataset(lrbench.get_task("cumsum", length=16), rank=2, world_size=2)
