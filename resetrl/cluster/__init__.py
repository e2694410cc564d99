"""Past one machine (docs/scale.md): rollout workers on Ray (`workers.py`), each prompt rolled out
the same on any of them (`shard.py`), and a data-parallel learner under torchrun (`distributed.py`)."""
