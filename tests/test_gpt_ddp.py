"""llmlab.gpt.train under torch.distributed (gloo on CPU, 127.0.0.1): two ranks with DistributedDataParallel follow the
loss curve of one process with the same global batch; a rank that raises ends the run within the timeout with its error;
the `python -m llmlab.gpt train` entry point writes a checkpoint."""
import datetime, os, socket, subprocess, sys, time, pathlib
import pytest, torch
import torch.multiprocessing as mp
from llmlab import gpt as G

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS, BATCH = 5, 8

def _cfg(): return G.GPTConfig(vocab_size=50, ctx_len=12, n_layer=2, n_head=2, d_model=16)
def _data(): return torch.arange(4000) % 50 * 7 % 50     # a learnable stream

def _free_port():
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def _rank(rank, world, port, out, fail_rank):
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=30))
    torch.manual_seed(0); m = G.GPT(_cfg())
    data, calls = _data(), [0]
    def batches(b, g):
        calls[0] += 1
        if rank == fail_rank and calls[0] == 3:
            pathlib.Path(f"{out}.raised").write_text(repr(time.time()))   # rank 0 is (or soon will be) waiting in a collective
            raise RuntimeError(f"rank {rank} failed on purpose")          # no clean-up: the process ends, spawn stops the others
        return G.get_batch(data, b, 12, g)
    h = G.train(m, batches, STEPS, lr=1e-2, batch_size=BATCH, seed=3, bar=False, plot=False)
    if rank == 0: torch.save({"loss": torch.tensor(h["loss"]), "tokens": h["tokens"],
                              **{k: v.clone() for k, v in m.state_dict().items()}}, out)
    torch.distributed.destroy_process_group()

def test_two_gloo_ranks_follow_the_single_process_loss_curve(tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0); ref = G.GPT(_cfg())
    data = _data()
    h = G.train(ref, lambda b, g: G.get_batch(data, b, 12, g), STEPS, lr=1e-2, batch_size=BATCH, seed=3, bar=False, plot=False)
    out = tmp_path / "rank0.pt"
    mp.spawn(_rank, args=(2, _free_port(), str(out), -1), nprocs=2, join=True)
    got = torch.load(out)
    torch.testing.assert_close(got["loss"], torch.tensor(h["loss"]), rtol=1e-5, atol=1e-5)
    assert got["tokens"] == h["tokens"] == STEPS * BATCH * 12
    for k, v in ref.state_dict().items(): torch.testing.assert_close(got[k], v, rtol=1e-4, atol=1e-5, msg=k)
    assert h["loss"][-1] < h["loss"][0]

def test_a_failing_rank_ends_the_run_with_its_error(tmp_path):
    "Rank 1 raises at its third batch while rank 0 waits in a collective: the run ends with rank 1's error, within the 30 s timeout."
    with pytest.raises(Exception, match="rank 1 failed on purpose"):
        mp.spawn(_rank, args=(2, _free_port(), str(tmp_path / "x.pt"), 1), nprocs=2, join=True)
    raised = float((tmp_path / "x.pt.raised").read_text())
    assert time.time() - raised < 30 + 60, "the surviving rank was not stopped within the process-group timeout (30 s, + process exit)"
    assert not (tmp_path / "x.pt").exists()

def test_ddp_needs_a_divisible_batch(tmp_path):
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1,
                                         timeout=datetime.timedelta(seconds=10))
    try:
        m = G.GPT(_cfg())
        h = G.train(m, _data(), 2, batch_size=3, bar=False, plot=False)          # world size 1: plain training, no DDP
        assert len(h["loss"]) == 2
        h = G.train(m, _data(), 2, batch_size=3, bar=False, plot=False, ddp=True)  # DDP of one process works too
        assert len(h["loss"]) == 2
    finally:
        torch.distributed.destroy_process_group()

def test_command_line_entry_point(tmp_path):
    G.PRESETS["test-cli"] = dict(config=dict(vocab_size=50, ctx_len=12, n_layer=1, n_head=2, d_model=16),
                                 data=lambda: (_data(), _data()[:600]), steps=20, lr=1e-2, batch_size=4, seed=0)
    try:
        assert G.main(["train", "--preset", "test-cli", "--out", str(tmp_path / "ck"), "--steps", "3"]) == 0
        m = G.load(tmp_path / "ck")
        assert m.meta["steps"] == 3 and m.meta["world_size"] == 1 and m.config.n_layer == 1
    finally:
        G.PRESETS.pop("test-cli")
    r = subprocess.run([sys.executable, "-m", "llmlab.gpt", "train", "--help"], capture_output=True, text=True, timeout=300,
                       env=os.environ | {"PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert r.returncode == 0 and "--preset" in r.stdout and "world-tiny" in r.stdout, r.stderr[-2000:]
