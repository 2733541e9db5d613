import time, torch, transformers, peft, sys
sys.path.insert(0, "src")
from lensllm.ntk import compute_ntk_features
from lensllm.ntk import _projection
cfg = transformers.LlamaConfig(vocab_size=384, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
    num_key_value_heads=16, intermediate_size=2816, max_position_embeddings=1024, attn_implementation="eager")
torch.manual_seed(0)
model = transformers.LlamaForCausalLM(cfg).cuda()
ids = torch.randint(3, 384, (64, 512))
batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
torch.cuda.synchronize()
orig_acc = _projection.CountSketch.accumulate
orig_hash = _projection.CountSketch._hash
tim = {"acc": 0.0, "hash": 0.0}
def acc(self, out, name, grad):
    torch.cuda.synchronize(); t = time.perf_counter(); orig_acc(self, out, name, grad); torch.cuda.synchronize(); tim["acc"] += time.perf_counter() - t
def hsh(self, name, numel):
    t = time.perf_counter(); r = orig_hash(self, name, numel); tim["hash"] += time.perf_counter() - t; return r
for label in ("cold", "warm"):
    t = time.perf_counter()
    spec = compute_ntk_features(model, batch, params="lora", dim=4096, seed=0)
    torch.cuda.synchronize()
    print(label, "total", round(time.perf_counter() - t, 3), spec.meta.get("engine"), spec.meta.get("chunk_size"), flush=True)
_projection.CountSketch.accumulate = acc
_projection.CountSketch._hash = hsh
t = time.perf_counter()
spec = compute_ntk_features(model, batch, params="lora", dim=4096, seed=0)
torch.cuda.synchronize()
print("instrumented total", round(time.perf_counter() - t, 3), {k: round(v, 3) for k, v in tim.items()}, flush=True)
_projection.CountSketch.accumulate = orig_acc
_projection.CountSketch._hash = orig_hash
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    compute_ntk_features(model, batch, params="lora", dim=4096, seed=0); torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=50))
print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=12, max_name_column_width=50))
# plain fwd+bwd of the same batch with LoRA for reference
pm = peft.get_peft_model(model, peft.LoraConfig(r=8, target_modules="all-linear"))
for i in range(2):
    torch.cuda.synchronize(); t = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = pm(input_ids=ids.cuda()).logits
    out.float().logsumexp(-1).mean().backward()
    torch.cuda.synchronize(); print("plain lora fwd+bwd", i, round(time.perf_counter() - t, 3), flush=True)
