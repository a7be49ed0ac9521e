"""The AWS Encryption SDK message format: header, body, footer, and streaming."""
