"""Tiny models built from configs and byte-level token batches for the NTK tests.

Nothing is downloaded: every model is a few-thousand-parameter config of a real architecture
with eager attention (``vmap`` needs it), token ids are generated in code.
"""

from __future__ import annotations

import torch
import transformers

VOCAB = 64
ENC_DEC = {"gpt2": False, "opt": False, "llama": False, "t5": True, "bart": True}


def build_tiny(arch: str, *, d: int = 16, layers: int = 1, dtype=None, seed: int = 0):
    """A tiny randomly initialised model of ``arch`` with eager attention, in eval mode."""
    tf = transformers
    common = {"vocab_size": VOCAB, "pad_token_id": 1, "eos_token_id": 2}
    if arch == "gpt2":
        cfg = tf.GPT2Config(n_embd=d, n_layer=layers, n_head=2, n_positions=64,
                            bos_token_id=2, **common)
        cls = tf.GPT2LMHeadModel
    elif arch == "opt":
        cfg = tf.OPTConfig(hidden_size=d, num_hidden_layers=layers, num_attention_heads=2,
                           ffn_dim=2 * d, word_embed_proj_dim=d, max_position_embeddings=64,
                           bos_token_id=2, **common)
        cls = tf.OPTForCausalLM
    elif arch == "llama":
        cfg = tf.LlamaConfig(hidden_size=d, num_hidden_layers=layers, num_attention_heads=2,
                             num_key_value_heads=2, intermediate_size=2 * d,
                             max_position_embeddings=64, bos_token_id=2, **common)
        cls = tf.LlamaForCausalLM
    elif arch == "t5":
        cfg = tf.T5Config(d_model=d, d_kv=d // 2, d_ff=2 * d, num_layers=layers,
                          num_decoder_layers=layers, num_heads=2, decoder_start_token_id=1,
                          **common)
        cls = tf.T5ForConditionalGeneration
    elif arch == "bart":
        cfg = tf.BartConfig(d_model=d, encoder_layers=layers, decoder_layers=layers,
                            encoder_attention_heads=2, decoder_attention_heads=2,
                            encoder_ffn_dim=2 * d, decoder_ffn_dim=2 * d,
                            max_position_embeddings=64, bos_token_id=2,
                            decoder_start_token_id=2, forced_eos_token_id=2, **common)
        cls = tf.BartForConditionalGeneration
    else:  # pragma: no cover
        raise ValueError(arch)
    cfg._attn_implementation = "eager"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(cfg)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()


def make_batch(arch: str, lengths: list[int], *, width: int | None = None, target_lengths=None,
               seed: int = 0) -> dict:
    """A right-padded batch of random byte-level token ids.

    Causal: ``labels = input_ids`` (Hugging Face shifts them), -100 on padding.
    Seq2seq: sources of ``lengths``, targets of ``target_lengths`` (default 5), -100 padding.
    """
    gen = torch.Generator().manual_seed(seed)
    n = len(lengths)
    width = width or max(lengths)
    ids = torch.full((n, width), 1, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, length in enumerate(lengths):
        ids[i, :length] = torch.randint(3, VOCAB, (length,), generator=gen)
        mask[i, :length] = 1
    if not ENC_DEC[arch]:
        labels = ids.masked_fill(mask == 0, -100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
    target_lengths = target_lengths or [5] * n
    t_width = max(target_lengths)
    labels = torch.full((n, t_width), -100, dtype=torch.long)
    for i, length in enumerate(target_lengths):
        labels[i, :length] = torch.randint(3, VOCAB, (length,), generator=gen)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def reference_outputs(model, batch: dict, params: dict | None = None):
    """f(x) per example from one ordinary *batched* forward (HF's own masks and shifting).

    Independent of the vmap path: used to check outputs, residuals and the Jacobian kernel.
    """
    kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    labels = batch["labels"]
    enc_dec = bool(getattr(model.config, "is_encoder_decoder", False))
    if enc_dec:
        kwargs["labels"] = labels
    else:
        kwargs["use_cache"] = False
    if params is None:
        logits = model(**kwargs).logits
    else:
        logits = torch.func.functional_call(model, params, (), kwargs)
        logits = logits.logits
    if not enc_dec:
        logits, labels = logits[:, :-1], labels[:, 1:]
    logp = torch.log_softmax(logits, dim=-1)
    scored = labels != -100
    tok = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (tok * scored).sum(1) / scored.sum(1)
