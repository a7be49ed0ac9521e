"""Structured encryption: the record format of the AWS Database Encryption SDK.

A record is a flat mapping of attribute names to typed :class:`Terminal` values. Encryption adds an
``aws_dbe_head`` (suite, message id, legend of signed attributes, stored encryption context, EDKs, key
commitment) and an ``aws_dbe_foot`` (per-recipient HMAC tags and, for the ECDSA flavor, a signature).
Source: aws/aws-database-encryption-sdk-dynamodb ``specification/structured-encryption/``.
"""

from __future__ import annotations

from .decrypt import DecryptedRecord, decrypt_structure
from .encrypt import EncryptedRecord, encrypt_structure
from .header import Header, parse_header
from .model import BINARY_TYPE, FOOTER_FIELD, HEADER_FIELD, RESERVED_PREFIX, Action, ParsedHeader, Terminal

__all__ = [
    "BINARY_TYPE",
    "FOOTER_FIELD",
    "HEADER_FIELD",
    "RESERVED_PREFIX",
    "Action",
    "DecryptedRecord",
    "EncryptedRecord",
    "Header",
    "ParsedHeader",
    "Terminal",
    "decrypt_structure",
    "encrypt_structure",
    "parse_header",
]
