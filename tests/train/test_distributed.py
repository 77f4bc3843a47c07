"""DDP on the CPU: two gloo processes under torchrun match one process on the same global batch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from comp448.train import distributed as D

from . import ddp_worker

HERE = Path(__file__).resolve().parent


def test_single_process_defaults(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = D.init_distributed()
    assert info == D.DistInfo() and info.is_main and not info.enabled
    assert D.is_main_process() and D.dist_info().world_size == 1
    t = torch.arange(3.0)
    assert torch.equal(D.all_reduce_sum(t), t) and D.broadcast_object({"a": 1}) == {"a": 1}
    D.barrier()
    D.cleanup()


def test_sampler_shards_one_permutation():
    """Rank r takes positions r, r+W, ... of the SAME seeded permutation; the union is the 1-process order."""
    data = list(range(12))
    one = D.make_sampler(data, shuffle=True, seed=3, info=D.DistInfo(0, 1, 0))
    shards = [D.make_sampler(data, shuffle=True, seed=3, info=D.DistInfo(r, 2, r)) for r in range(2)]
    for s in [one, *shards]:
        s.set_epoch(1)
    order = list(one)
    assert sorted(order) == data
    assert list(shards[0]) == order[0::2] and list(shards[1]) == order[1::2]
    one.set_epoch(2)
    assert list(one) != order                       # a new permutation each epoch


def test_init_errors(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("MASTER_PORT", "1234")
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        D.init_distributed()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer"):
        D.init_distributed()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(ValueError, match="backend"):
        D.init_distributed(backend="smoke-signals")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_gloo_processes_match_one_process(tmp_path):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1])}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={D.free_port()}", str(HERE / "ddp_worker.py"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=False)
    assert ddp["world_size"] == 2
    single = ddp_worker.run(None)
    assert single["world_size"] == 1
    for k, v in single["state"].items():
        torch.testing.assert_close(ddp["state"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    for a, b in zip(ddp["history"], single["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_dice"] == pytest.approx(b["val_dice"], abs=1e-6)
    # and the weights did move: the comparison is not between two untrained nets
    torch.manual_seed(0)
    assert max((v - ddp["state"][k]).abs().max().item()
               for k, v in ddp_worker.small_net().state_dict().items()) > 1e-3
