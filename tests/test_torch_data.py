"""PyTorch adapters (SPEC §5): batches addressed by step whatever the workers, ranks or restarts;
DataLoader workers x simulated DDP ranks see every sample of a split exactly once; stored dtypes
kept; HDF5 files opened lazily inside each worker."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

import lrbench  # noqa: E402
from lrbench.generate import generate  # noqa: E402
from lrbench.torch_data import Source, SplitDataset, StreamDataset, loader, pad_collate  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    task = lrbench.get_task("cumsum", length=16)
    directory = tmp_path_factory.mktemp("ds") / "cumsum"
    generate(task, directory, sizes={"val": 23}, shard_size=5)
    return task, directory


def indices_seen(loaders):
    return [i for batches in loaders for batch in batches for i in batch["index"].tolist()]


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
def test_batch_s_is_the_same_whatever_the_workers_ranks_or_restarts(workers):
    """SPEC §5: step s of the stream holds samples s·B ... s·B + B - 1, with any number of loader
    workers; two ranks hold its two halves; a restart at step 2 sees steps 2, 3 as an unbroken run.
    (The stream used to stride samples over workers: batch 0 was samples 0, 2, ..., 14 with 2
    workers and 0 ... 7 with none.)"""
    task = lrbench.get_task("shift", length=16)
    whole = list(DataLoader(StreamDataset(task, seed=4, batch_size=8, stop=4), batch_size=None,
                            num_workers=workers))
    assert [b["step"] for b in whole] == [0, 1, 2, 3]
    assert [b["index"].tolist() for b in whole] == [list(range(8 * s, 8 * s + 8)) for s in range(4)]
    assert np.array_equal(whole[1]["inputs"][3].numpy(), task.sample(11, "train", 4)["inputs"])
    halves = [list(loader(StreamDataset(task, seed=4, batch_size=8, stop=4, rank=r, world_size=2), workers))
              for r in range(2)]
    for s in range(4):
        joined = torch.cat([halves[0][s]["inputs"], halves[1][s]["inputs"]])
        assert torch.equal(joined, whole[s]["inputs"])
    restarted = list(loader(StreamDataset(task, seed=4, batch_size=8, start=2, stop=4), workers))
    assert [b["step"] for b in restarted] == [2, 3] and torch.equal(restarted[0]["targets"], whole[2]["targets"])


def test_stored_dtypes_are_kept():
    """uint8 images stay uint8 and int8 tags int8 (they were widened to int64 on the host)."""
    pathfinder = lrbench.get_task("pathfinder-seg")
    batch = next(iter(loader(StreamDataset(pathfinder, split="test", batch_size=1, stop=1))))
    assert batch["inputs"].dtype == torch.uint8 and batch["targets"].dtype == torch.uint8
    listops = lrbench.get_task("listops-subtrees", max_depth=6, min_length=16, max_length=64)
    batch = next(iter(loader(StreamDataset(listops, split="test", batch_size=4, stop=1))))
    assert batch["inputs"].dtype == torch.uint8 and batch["targets"].dtype == torch.int8
    assert batch["lengths"].tolist() == [len(listops.sample(i, "test")["inputs"]) for i in range(4)]


def test_a_finite_split_is_read_in_a_new_order_every_epoch(dataset):
    task, directory = dataset
    view = lrbench.open_dataset(directory)["val"]
    generated, read = Source(task, "val", 0, epoch_size=23), Source(task, "val", 0, view=view, epoch_size=23)
    order = [generated.item(i) for i in range(69)]
    assert all(sorted(order[23 * e: 23 * e + 23]) == list(range(23)) for e in range(3))
    assert order[:23] != order[23:46]
    for i in (0, 24, 50):
        assert np.array_equal(generated(i)["targets"], read(i)["targets"])


def test_endless_stream_keeps_going():
    task = lrbench.get_task("cumsum", length=16)
    it = iter(loader(StreamDataset(task, batch_size=5)))
    seen = [next(it)["index"].tolist() for _ in range(30)]
    assert seen[-1] == list(range(145, 150))


def test_ragged_fields_are_padded_with_their_pad_value():
    from lrbench.registry import Feature

    features = {"inputs": Feature("uint8", (8,), ragged=True, pad=0),
                "targets": Feature("int8", (8,), ragged=True, pad=-100)}
    batch = [{"inputs": torch.tensor([3, 4, 5]), "targets": torch.tensor([-100, -100, 7])},
             {"inputs": torch.tensor([1]), "targets": torch.tensor([2])}]
    out = pad_collate(features)(batch)
    assert out["inputs"].tolist() == [[3, 4, 5], [1, 0, 0]]
    assert out["targets"].tolist() == [[-100, -100, 7], [2, -100, -100]]
    assert out["lengths"].tolist() == [3, 1]


def test_bad_rank_and_batch():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\)"):
        StreamDataset(lrbench.get_task("cumsum", length=16), batch_size=4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive multiple of world_size 2"):
        StreamDataset(lrbench.get_task("cumsum", length=16), batch_size=3, rank=0, world_size=2)
