"""Inference and training speed of `piano` network sizes (channels 24/32/48), CPU.

    python benchmarks/bench_piano_sizes.py THREADS
"""
import time, torch, sys
from transcribe_cli.models.piano import PianoNet
from transcribe_cli.models.neural import count_parameters
torch.set_num_threads(int(sys.argv[1]))
for c in (24, 32, 48):
    net = PianoNet(channels=c)
    print("C", c, "params", count_parameters(net))
    net.eval()
    x = torch.randn(1, 1001, 352).abs()
    with torch.inference_mode():
        net(x)
        ts=[]
        for _ in range(3):
            t=time.perf_counter(); net(x); ts.append(time.perf_counter()-t)
    print(f"  infer 20s: {min(ts):.3f}s -> {20/min(ts):.0f}x")
    net.train()
    xb = torch.randn(8, 251, 352).abs()
    opt = torch.optim.AdamW(net.parameters())
    ts=[]
    for _ in range(3):
        t=time.perf_counter()
        out = net.forward_logits(xb); loss = sum(v.mean() for v in out.values()); loss.backward(); opt.step(); opt.zero_grad()
        ts.append(time.perf_counter()-t)
    print(f"  train step 8x5s: {min(ts):.3f}s -> {40/min(ts):.1f} audio s/s")
