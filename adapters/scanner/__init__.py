"""Reading LoRA files: paths, safetensors headers, hashes and derived fields (SPEC 6.6)."""
