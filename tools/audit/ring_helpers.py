"Workers for llmlab.ring_attention.launch cases (importable by spawned ranks)."
import torch

def unequal_shards(rank, world):
    from llmlab.ring_attention import ring_attention
    n = 4 if rank == 0 else 6                                   # ranks disagree on the shard length
    g = torch.Generator().manual_seed(rank)
    q, k, v = (torch.randn(1, 2, n, 8, generator=g) for _ in range(3))
    return ring_attention(q, k, v, causal=True).shape

def ok_ring(rank, world):
    from llmlab.ring_attention import ring_attention, shard, block_attention_ref
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 8, 8, generator=g, dtype=torch.float64) for _ in range(3))
    out = ring_attention(shard(q, rank, world), shard(k, rank, world), shard(v, rank, world), causal=True)
    ref = block_attention_ref(q, k, v, causal=True)[0]
    return float((out - shard(ref, rank, world)).abs().max())
