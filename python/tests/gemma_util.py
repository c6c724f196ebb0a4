"""A Hugging Face Gemma decoder layer of pi0.5's shapes (PI05.md), for GPU tests and benchmarks."""
import inspect

import torch

BACKBONE = dict(hidden_size=2048, intermediate_size=16384)
EXPERT = dict(hidden_size=1024, intermediate_size=4096)


def make_layer(shape, device="cuda", outliers=True, seed=0):
    """GemmaDecoderLayer (8 heads, 1 KV head, head_dim 256, gelu_tanh MLP) in BF16 with random
    weights. Returns (layer, call) where call(x) runs it.

    outliers="balanced": four channels of the down_proj input are made 1000x larger and the
    matching down_proj columns 1000x smaller, as "massive activations" appear in trained
    models (pi0.5's late down_proj inputs reach |x| ~ 6800 while the layer output stays
    moderate): per-row FP8 scaling must keep the other channels usable.
    outliers="raw": the same channels 1000x larger with unchanged weights: the output is then
    dominated by four weights per output row, so even exact activations leave the 4-bit weight
    error un-averaged (a stress case: reported by bench_torch.py, not held to 0.99).
    """
    from transformers import GemmaConfig
    from transformers.models.gemma import modeling_gemma as mg

    torch.manual_seed(seed)
    cfg = GemmaConfig(num_attention_heads=8, num_key_value_heads=1, head_dim=256, num_hidden_layers=1,
                      hidden_activation="gelu_pytorch_tanh", vocab_size=256, **shape)
    cfg._attn_implementation = "sdpa"
    layer = mg.GemmaDecoderLayer(cfg, layer_idx=0)
    with torch.no_grad():
        for p in layer.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
        if outliers:
            layer.mlp.up_proj.weight[:4] *= 1000.0
        if outliers == "balanced":
            layer.mlp.down_proj.weight[:, :4] /= 1000.0
    layer = layer.to(device=device, dtype=torch.bfloat16).eval()
    rope = mg.GemmaRotaryEmbedding(config=cfg).to(device)
    params = inspect.signature(layer.forward).parameters

    def call(x):
        pos = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        kw = {}
        if "position_embeddings" in params:
            kw["position_embeddings"] = rope(x, pos)
        if "position_ids" in params:
            kw["position_ids"] = pos
        out = layer(x, attention_mask=None, **kw)
        return out[0] if isinstance(out, tuple) else out

    return layer, call
