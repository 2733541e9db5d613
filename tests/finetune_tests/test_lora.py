"""The NTK of a LoRA run is taken over exactly the parameters that run trains."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")

from lensllm.finetune.config import FinetuneConfig  # noqa: E402
from lensllm.finetune.models import load_model  # noqa: E402
from lensllm.finetune.lora import add_lora, run_lora_config  # noqa: E402
from lensllm.ntk._params import prepare_model, trainable_parameters  # noqa: E402


@pytest.mark.parametrize("targets", ["all-linear", ("c_attn",)])
def test_lora_kernel_parameters_are_the_runs_trainable_parameters(targets):
    config = FinetuneConfig(method="lora", lora_r=4, lora_target_modules=targets)
    run_model, _ = load_model("tiny:gpt2")
    trained = add_lora(run_model, config, False)
    run_names = {n.replace("base_model.model.", "") for n, p in trained.named_parameters()
                 if p.requires_grad}

    ntk_model, _ = load_model("tiny:gpt2", attn_implementation="eager")
    module = prepare_model(ntk_model, "lora", lora_config=run_lora_config(config, False),
                           seed=0)
    ntk_names = {n.replace("base_model.model.", "") for n in trainable_parameters(module,
                                                                                  "lora")}
    assert run_names and ntk_names == run_names
