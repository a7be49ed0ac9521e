"""Keyrings: local (raw AES, raw RSA, multi) and AWS (KMS, discovery, KMS RSA, hierarchical)."""
