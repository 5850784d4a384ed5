"""What went wrong, in one line that names the setting or option and says what to do.

The CLI turns any exception that reaches it into such a line (and exit code 1; 2 for a
bad setting or option); `--debug` shows the traceback instead. The texts never carry
credentials: they are built from exception types and the settings, and a message
quoted from a library is cut to its first line and scrubbed of anything after a
`Credential=` or `Signature=`.
"""

from __future__ import annotations

import re

from flows.terminal import inert

_SECRETS = re.compile(
    r"(Credential|Signature|X-Amz-Security-Token|aws_secret_access_key)=\S+", re.I
)
HINT = " (--debug shows the traceback)"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return _SECRETS.sub(r"\1=***", line)[:300]


def one_line(e: BaseException, endpoint_url: str | None = None) -> tuple[str, int]:
    """(the line to print, the exit code) for an exception that ended a command."""
    from flows.config import ConfigError
    from flows.export import ExportError
    from storage.manifest import ManifestError
    from storage.schema import SchemaMismatch
    from tasks.backends.protocol import ModelNotAvailable
    from tasks.caption import CaptionerError
    from tasks.feed import CaptionerUnavailable

    said = (ConfigError, SchemaMismatch, CaptionerError, ModelNotAvailable, ManifestError,
            ExportError)  # fmt: skip
    if isinstance(e, said):
        return inert(str(e)), 2
    if isinstance(e, CaptionerUnavailable):
        return (
            f"the captioner did not answer past its retries: {inert(_first_line(e))}; is the "
            "server running? (caption.captioner / --captioner)",
            1,
        )
    s3 = _s3_line(e, endpoint_url)
    if s3:
        return s3, 1
    return f"{type(e).__name__}: {inert(_first_line(e))}{HINT}", 1


def _s3_line(e: BaseException, endpoint_url: str | None) -> str | None:
    try:
        from botocore import exceptions as bx
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return None
    where = endpoint_url or "AWS"
    if isinstance(e, bx.NoCredentialsError | bx.PartialCredentialsError):
        return (
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
            "AWS_PROFILE) for the endpoint in s3.endpoint_url"
        )
    if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return (
            f"cannot reach the S3 endpoint {inert(where)}: is it running? "
            "(s3.endpoint_url / --endpoint-url)"
        )
    if isinstance(e, bx.ClientError):
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchBucket", "404"):
            return f"no such bucket at {inert(where)} (source.bucket / --bucket)"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return (
                f"S3 at {inert(where)} refused the credentials ({code}): check "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            )
        return f"S3 at {inert(where)} answered {code or 'an error'}: {inert(_first_line(e))}"
    return None
