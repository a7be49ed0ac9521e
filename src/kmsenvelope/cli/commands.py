"""``kmsenvelope encrypt`` and ``decrypt``: one file or stream, or a directory tree with ``-r``."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from ..errors import NoUsableKeyError
from ..suites import Suite
from . import keys as keys_mod
from .batch import Job, plan_jobs, run_jobs
from .exits import CliError, ExitCode
from .explain import Replay, check_policy, check_unsigned, explain_wrong_key, peek_header
from .file_jobs import (
    Counting,
    KnownLength,
    check_job,
    io_options,
    kms_calls,
    make_parent,
    metadata_sink,
    overwrite_rule,
    record,
    replacing,
    report,
    with_cache,
)
from .inspect import describe_header
from .options import (
    POLICY_FLAG,
    configure_logging,
    kms_options,
    parse_cache,
    parse_context,
    parse_policy,
    parse_suite,
    policy_name,
    policy_option,
)
from .streams import STDIO, Base64Writer, atomic_output, base64_input, open_input

__all__ = ["decrypt", "encrypt", "parse_context", "parse_suite"]

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("kmsenvelope.cli")
DEFAULT_SUITE = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
DEFAULT_LEGACY_SUITE = Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256


@click.command()
@click.option(
    "--key",
    "-k",
    "keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="Key file from keygen, or AWS KMS key ARN / alias / id. Repeat to wrap under several keys.",
)
@click.option(
    "--context",
    "-c",
    "context_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Encryption context pair (authenticated, stored in clear). Repeatable.",
)
@click.option("--suite", default=None, help="Algorithm suite id or name [default: 0x0478].")
@click.option(
    "--frame-length",
    type=click.IntRange(1, 2**31 - 1),
    default=65536,
    show_default=True,
    help="Plaintext bytes per frame.",
)
@policy_option
@click.option(
    "--max-encrypted-data-keys",
    type=click.IntRange(1, 65535),
    default=None,
    help="Refuse to write more encrypted data keys (one per --key).",
)
@io_options
@kms_options("AWS region for aliases and bare key ids.")
def encrypt(
    input_path: str,
    output: str,
    use_base64: bool,
    recursive: bool,
    suffix: str | None,
    force: bool,
    interactive: bool,
    metadata_output: str | None,
    cache_spec: str | None,
    verbose: int,
    quiet: bool,
    keys: tuple[str, ...],
    context_pairs: tuple[str, ...],
    suite: str | None,
    frame_length: int,
    commitment_policy: str | None,
    max_encrypted_data_keys: int | None,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
) -> None:
    """Encrypt INPUT (default stdin) into an AWS Encryption SDK message, or a tree with -r."""
    from ..envelope import Envelope

    configure_logging(verbose, quiet)
    context = parse_context(context_pairs, "--context")
    policy = parse_policy(commitment_policy)
    legacy_default = DEFAULT_LEGACY_SUITE if not policy.encrypt_requires_commitment else DEFAULT_SUITE
    chosen = parse_suite(suite) if suite is not None else legacy_default
    if not chosen.committing and policy.encrypt_requires_commitment:
        raise CliError(
            f"suite 0x{chosen.id:04X} is a legacy suite without key commitment; writing it needs "
            f"{POLICY_FLAG} forbid-encrypt-allow-decrypt",
            ExitCode.POLICY,
        )
    if chosen.committing and not policy.encrypt_requires_commitment:
        raise CliError(
            f"{POLICY_FLAG} {policy_name(policy)} writes only legacy suites; 0x{chosen.id:04X} commits to "
            "its key",
            ExitCode.POLICY,
        )
    overwrite = overwrite_rule(force, interactive)
    jobs = plan_jobs(input_path, output, recursive=recursive, encrypting=True, suffix=suffix)
    if output == STDIO and not use_base64 and sys.stdout.isatty():
        raise CliError(
            "refusing to write binary ciphertext to a terminal; use -o FILE or --base64", ExitCode.USAGE
        )
    for job in jobs if not recursive else ():
        check_job(job)
    keyring = keys_mod.build_keyring(
        keys, keys_mod.KmsOptions(region, profile, endpoint_url), decrypting=False
    )
    source = with_cache(keyring, parse_cache(cache_spec))
    if max_encrypted_data_keys is not None and len(keys) > max_encrypted_data_keys:
        raise CliError(
            f"{len(keys)} keys wrap {len(keys)} encrypted data keys, over --max-encrypted-data-keys "
            f"{max_encrypted_data_keys}",
            ExitCode.POLICY,
        )
    metadata = metadata_sink(metadata_output, jobs)

    def work(job: Job) -> None:
        check_job(job)
        started, kms = time.perf_counter(), kms_calls()
        size = os.path.getsize(job.source) if job.source != STDIO and source is not keyring else None
        envelope = Envelope(
            KnownLength(source, size) if size is not None else source,
            suite=chosen,
            frame_length=frame_length,
            commitment_policy=policy,
            max_encrypted_data_keys=max_encrypted_data_keys,
        )
        make_parent(job.target, recursive)
        with (
            open_input(job.source) as raw,
            atomic_output(job.target, private=False, overwrite=replacing(job.target)) as dst,
        ):
            src, out = Counting(raw, size, job.source), Counting(dst)
            if use_base64:
                encoder = Base64Writer(out)  # type: ignore[arg-type]
                header = envelope.encrypt_stream(src, encoder, context)  # type: ignore[arg-type]
                encoder.finish()
            else:
                header = envelope.encrypt_stream(src, out, context)  # type: ignore[arg-type]
        doc = describe_header(header)
        counts = (src.count, out.count)
        report("encrypted", job, doc, counts, started, kms)
        metadata.write(record(doc, job, "encrypt", "base64" if use_base64 else "binary", counts))

    try:
        run_jobs(jobs, work, overwrite, verb="encrypted", batch=recursive)
    finally:
        metadata.close()


@click.command()
@click.option(
    "--key",
    "-k",
    "keys",
    multiple=True,
    metavar="KEY",
    help="Key file, or AWS KMS key ARN. Repeat to try several keys.",
)
@click.option(
    "--require-context",
    "-c",
    "context_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Fail unless the message is bound to this context pair. Repeatable.",
)
@click.option("--discovery", is_flag=True, help="Decrypt with any AWS KMS key you may use (in --region).")
@click.option(
    "--discovery-account",
    "discovery_accounts",
    multiple=True,
    metavar="ACCOUNT",
    help="With --discovery: only trust KMS keys of this AWS account. Repeatable.",
)
@click.option("--discovery-partition", default="aws", show_default=True, help="With --discovery-account.")
@policy_option
@click.option(
    "--allow-uncommitted",
    is_flag=True,
    help=f"Also read legacy suites without key commitment (= {POLICY_FLAG} require-encrypt-allow-decrypt).",
)
@click.option(
    "--decrypt-unsigned", is_flag=True, help="Refuse signed messages (only unsigned suites are accepted)."
)
@click.option(
    "--max-encrypted-data-keys",
    type=click.IntRange(1, 65535),
    default=None,
    help="Refuse messages carrying more encrypted data keys.",
)
@io_options
@kms_options("AWS region for --discovery.")
def decrypt(
    input_path: str,
    output: str,
    use_base64: bool,
    recursive: bool,
    suffix: str | None,
    force: bool,
    interactive: bool,
    metadata_output: str | None,
    cache_spec: str | None,
    verbose: int,
    quiet: bool,
    keys: tuple[str, ...],
    context_pairs: tuple[str, ...],
    discovery: bool,
    discovery_accounts: tuple[str, ...],
    discovery_partition: str,
    commitment_policy: str | None,
    allow_uncommitted: bool,
    decrypt_unsigned: bool,
    max_encrypted_data_keys: int | None,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
) -> None:
    """Decrypt an AWS Encryption SDK message from INPUT (default stdin), or a tree with -r.

    With -o FILE, plaintext goes to an unnamed file that becomes FILE only once the whole message
    has been authenticated. To stdout, each frame is written once its tag verifies (signed suites:
    only after the signature verifies); if decryption then fails, the exit status is non-zero and
    what was written must be discarded.
    """
    from ..envelope import Envelope

    configure_logging(verbose, quiet)
    required = parse_context(context_pairs, "--require-context")
    policy = parse_policy(commitment_policy, allow_uncommitted=allow_uncommitted)
    overwrite = overwrite_rule(force, interactive)
    jobs = plan_jobs(input_path, output, recursive=recursive, encrypting=False, suffix=suffix)
    for job in jobs if not recursive else ():
        check_job(job)
    keyring = keys_mod.build_keyring(
        keys,
        keys_mod.KmsOptions(region, profile, endpoint_url),
        decrypting=True,
        discovery=discovery,
        discovery_accounts=discovery_accounts,
        discovery_partition=discovery_partition,
    )
    given = keys_mod.describe_keys(keys) + ([("--discovery", None)] if discovery else [])
    envelope = Envelope(
        with_cache(keyring, parse_cache(cache_spec)),
        commitment_policy=policy,
        max_encrypted_data_keys=max_encrypted_data_keys,
    )
    metadata = metadata_sink(metadata_output, jobs)

    def work(job: Job) -> None:
        check_job(job)
        started, kms = time.perf_counter(), kms_calls()
        with open_input(job.source) as raw:
            counted = Counting(raw)
            src = Replay(base64_input(counted) if use_base64 else counted)  # type: ignore[arg-type]
            header = peek_header(src, envelope.limits, encoded=use_base64)
            check_policy(header, policy)
            if decrypt_unsigned:
                check_unsigned(header)
            make_parent(job.target, recursive)
            with atomic_output(job.target, private=True, overwrite=replacing(job.target)) as dst:
                out = Counting(dst)
                try:
                    envelope.decrypt_stream(src, out, required)  # type: ignore[arg-type]
                except NoUsableKeyError as exc:
                    _explain_missing_context(header.encryption_context, required)
                    raise explain_wrong_key(header, given, exc) from None
        doc = describe_header(header)
        counts = (counted.count, out.count)
        report("decrypted", job, doc, counts, started, kms)
        metadata.write(record(doc, job, "decrypt", "base64" if use_base64 else "binary", counts))

    try:
        run_jobs(jobs, work, overwrite, verb="decrypted", batch=recursive)
    finally:
        metadata.close()


def _explain_missing_context(stored: Mapping[str, str], required: Mapping[str, str]) -> None:
    """Turn "no usable key" into a context error when required pairs are not stored in the message.

    Such pairs are authenticated as required context (ESDK required-encryption-context semantics), so a
    pair the message was never bound to makes every data key fail to unwrap.
    """
    missing = sorted(key for key in required if key not in stored)
    if missing:
        raise CliError(
            f"the message does not store encryption context key(s) {', '.join(map(repr, missing))}: they are "
            "not bound to it (or are required context this key cannot verify)",
            ExitCode.CONTEXT,
        )
