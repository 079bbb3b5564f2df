#!/usr/bin/env python3
"""PyTorch on the same GPU and the same shapes as cuda_kernel_test's benchmarks, for the comparison that
native/tests/gpu/run.sh prints: causal prefill attention (scaled_dot_product_attention, FP32 like the
paged prefill kernel, 32 query / 8 KV heads, head_dim 128, one sequence of T tokens), decode attention
over a contiguous cache (one query token per sequence; the paged kernel reads a shuffled block table,
so this is an upper bound it need not reach), and the BF16 matmul (rows x 4096 . 4096 x 4096, FP32
accumulation). Inputs are random; times are medians of CUDA-event timings of groups after a warm-up.
Prints markdown rows; exits 2 without torch or a GPU."""
import statistics
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch_reference.py: no torch here")
    sys.exit(2)
if not torch.cuda.is_available():
    print("torch_reference.py: torch sees no GPU")
    sys.exit(2)


def time_ms(f, iters):
    f()
    torch.cuda.synchronize()
    groups = []
    for _ in range(7):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iters):
            f()
        b.record()
        b.synchronize()
        groups.append(a.elapsed_time(b) / iters)
    return statistics.median(groups)


dev = "cuda"
torch.manual_seed(2026)
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
a = torch.empty(1 << 28, device=dev)  # 1 GiB
a.uniform_(-1, 1)
b = torch.empty_like(a)
ms = time_ms(lambda: b.copy_(a), 10)
print(f"device-to-device copy (torch): {2 * a.numel() * 4 / (ms / 1e3) / 1e9:.0f} GB/s (read + write)")
del a, b
print("| op (PyTorch) | batch | context | heads/kv | head_dim | ms | GB/s K/V | TFLOP/s |")
print("|---|---|---|---|---|---|---|---|")
heads, kvh, hd = 32, 8, 128
for T in (512, 2048):
    q = torch.randn(1, heads, T, hd, device=dev)
    # K/V expanded to every query head beforehand (not timed), so that FP32 runs PyTorch's
    # memory-efficient kernel whichever backends take enable_gqa in this version
    k = torch.randn(1, kvh, T, hd, device=dev).repeat_interleave(heads // kvh, dim=1)
    v = torch.randn(1, kvh, T, hd, device=dev).repeat_interleave(heads // kvh, dim=1)
    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), 5)
    flops = 4.0 * heads * hd * T * T / 2
    print(f"| prefill sdpa fp32 | 1 | {T} | {heads}/{kvh} | {hd} | {ms:.3f} | | {flops / (ms / 1e3) / 1e12:.2f} |")
for dtype, name in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
    for batch in (1, 32, 128):
        for ctx in (512, 4096):
            q = torch.randn(batch, heads, 1, hd, device=dev, dtype=dtype)
            k = torch.randn(batch, kvh, ctx, hd, device=dev, dtype=dtype)
            v = torch.randn(batch, kvh, ctx, hd, device=dev, dtype=dtype)
            ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), 20)
            gbps = 2.0 * batch * ctx * kvh * hd * k.element_size() / (ms / 1e3) / 1e9
            print(f"| decode sdpa {name} (contiguous) | {batch} | {ctx} | {heads}/{kvh} | {hd} | {ms:.3f} | {gbps:.0f} | |")
            del q, k, v
for rows in (1, 32, 2048):
    k = m = 4096
    x = torch.randn(rows, k, device=dev).to(torch.bfloat16)
    w = torch.randn(m, k, device=dev).to(torch.bfloat16)
    ms = time_ms(lambda: torch.matmul(x, w.t()), 10)
    print(f"| matmul bf16 torch.matmul | {rows} | k={k} | m={m} | | {ms:.3f} | {2.0 * m * k / (ms / 1e3) / 1e9:.0f} (weights) "
          f"| {2.0 * rows * k * m / (ms / 1e3) / 1e12:.2f} |")
