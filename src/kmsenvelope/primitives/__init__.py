"""Thin wrappers over ``cryptography``: AES-GCM, HKDF, HMAC-based KDFs and ECDSA."""
