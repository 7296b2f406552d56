"Checkpoint race helper: `ckpt_writer.py DIR TAG N` saves N times a model whose weights are all == its tag's seed."
import sys, os
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch
from llmlab import gpt
d, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def model_for(tag):
    torch.manual_seed({"A": 1, "B": 2}[tag])
    cfg = gpt.GPTConfig(vocab_size=32, ctx_len=8, n_layer=1, n_head=2, d_model=16) if tag == "A" else \
          gpt.GPTConfig(vocab_size=32, ctx_len=8, n_layer=1, n_head=2, d_model=16, rope_base=500.0)
    return gpt.GPT(cfg)
m = model_for(tag)
for i in range(n):
    gpt.save(m, d, meta={"writer": tag, "i": i})
print("done", tag)
