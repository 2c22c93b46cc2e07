import torch, sys, os
sys.path.insert(0, '.')
from mfcore import fusion
dev='cuda'
m = fusion.AffineFuse(4, 64).to(dev)
with torch.no_grad():
    m.omega_base.normal_(0, 1e-2); m.theta.add_(0.05*torch.randn_like(m.theta))
x = torch.rand(32,4,17,64,64, device=dev); y = torch.rand_like(x)
def step():
    with torch.autocast('cuda', dtype=torch.bfloat16):
        loss = fusion.fusion_mse(m(x), y)
    loss.backward()
for _ in range(3): step()
torch.cuda.synchronize()
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    for _ in range(3): step()
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=8, max_name_column_width=60))
