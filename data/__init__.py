"""Torch-free data reading that the base install owns: dataset files, checksums, the cache, text tokens.

Training reads its corpora here, and the runtime's commands (``rnnedge classify``) and the
README's embedding example read the same files without torch.
"""
