"""Each verification scheme: what it accepts, and each way a delivery is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import standardwebhooks

from connectors.webhooks import VERIFIERS, Check, Scheme, lower_case, verifier
from connectors.webhooks.base import TOLERANCE_S, Verifier
from pipeline.errors import InvalidRequest, VerificationFailed

NOW = 1_700_000_000.0
BODY = b'{"id": "evt_1", "type": "order.created", "amount": 42}'
SIGNED = [Scheme.STANDARD, Scheme.GITHUB, Scheme.STRIPE]
TIMESTAMPED = [Scheme.STANDARD, Scheme.STRIPE]


def signed_by(scheme: Scheme, secret: str, body: bytes = BODY, now: float = NOW,
              delivery: str = "msg_1") -> dict[str, str]:
    return lower_case(VERIFIERS[scheme].sign(body, secret, now, delivery))


def refused(check: Check, call: Callable[[], object]) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as caught:
        call()
    assert caught.value.check == check, caught.value.message
    return caught.value


@pytest.fixture(params=SIGNED, ids=str)
def scheme(request: pytest.FixtureRequest) -> Scheme:
    return Scheme(request.param)


@pytest.fixture
def signer(scheme: Scheme) -> Verifier:
    return VERIFIERS[scheme]


@pytest.fixture
def secret(signer: Verifier) -> str:
    return signer.new_secret()


# every signed scheme


def test_a_correctly_signed_delivery_is_accepted(signer: Verifier, secret: str) -> None:
    headers = signed_by(signer.scheme, secret)

    delivery = signer.verify(headers, BODY, [secret], NOW)

    expected = "evt_1" if signer.scheme == Scheme.STRIPE else "msg_1"  # Stripe: the body's id
    assert delivery == expected


def test_a_forged_body_is_refused(signer: Verifier, secret: str) -> None:
    headers = signed_by(signer.scheme, secret)

    refused(Check.BAD_SIGNATURE, lambda: signer.verify(headers, BODY + b" ", [secret], NOW))


def test_a_delivery_signed_with_another_secret_is_refused(signer: Verifier, secret: str) -> None:
    headers = signed_by(signer.scheme, signer.new_secret())

    error = refused(Check.BAD_SIGNATURE, lambda: signer.verify(headers, BODY, [secret], NOW))
    assert secret not in error.message


def test_no_secret_accepts_nothing(signer: Verifier, secret: str) -> None:
    headers = signed_by(signer.scheme, secret)

    refused(Check.BAD_SIGNATURE, lambda: signer.verify(headers, BODY, [], NOW))


def test_any_unexpired_secret_verifies_during_a_rotation(signer: Verifier, secret: str) -> None:
    newer = signer.new_secret()
    headers = signed_by(signer.scheme, secret)

    assert signer.verify(headers, BODY, [newer, secret], NOW)


def test_a_binary_body_is_verified_byte_for_byte(signer: Verifier, secret: str) -> None:
    body = bytes(range(256))
    headers = signed_by(signer.scheme, secret, body)

    signer.verify(headers, body, [secret], NOW)
    refused(Check.BAD_SIGNATURE, lambda: signer.verify(headers, body[:-1], [secret], NOW))


def test_a_missing_signature_header_is_refused(signer: Verifier, secret: str) -> None:
    headers = signed_by(signer.scheme, secret)
    signature_header = next(h for h in headers if "signature" in h)
    del headers[signature_header]

    error = refused(Check.MISSING_HEADER, lambda: signer.verify(headers, BODY, [secret], NOW))
    assert signature_header in error.message


def test_signatures_are_compared_in_constant_time(
    signer: Verifier, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    headers = signed_by(signer.scheme, secret)

    signer.verify(headers, BODY, [secret], NOW)
    with pytest.raises(VerificationFailed):
        signer.verify(headers, b"forged", [secret], NOW)

    assert len(calls) == 2
    assert all(isinstance(a, bytes) and len(a) == 32 for a, _ in calls)


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
@pytest.mark.parametrize(("skew", "check"), [(-TOLERANCE_S - 1, Check.STALE_TIMESTAMP),
                                             (TOLERANCE_S + 1, Check.FUTURE_TIMESTAMP)])
def test_timestamps_outside_the_tolerance_are_refused(scheme: Scheme, skew: int,
                                                      check: Check) -> None:
    signer = VERIFIERS[scheme]
    secret = signer.new_secret()
    headers = signed_by(scheme, secret, now=NOW + skew)  # correctly signed, but then (or later)

    refused(check, lambda: signer.verify(headers, BODY, [secret], NOW))


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
@pytest.mark.parametrize("skew", [-TOLERANCE_S, TOLERANCE_S])
def test_timestamps_at_the_tolerance_are_accepted(scheme: Scheme, skew: int) -> None:
    signer = VERIFIERS[scheme]
    secret = signer.new_secret()

    assert signer.verify(signed_by(scheme, secret, now=NOW + skew), BODY, [secret], NOW)


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_a_forged_stale_delivery_hears_only_bad_signature(scheme: Scheme) -> None:
    signer = VERIFIERS[scheme]
    headers = signed_by(scheme, signer.new_secret(), now=NOW - 3600)

    other = signer.new_secret()

    refused(Check.BAD_SIGNATURE, lambda: signer.verify(headers, BODY, [other], NOW))


def test_a_signed_scheme_generates_secrets_it_accepts(signer: Verifier) -> None:
    secret = signer.new_secret()

    assert signer.check_secret(secret) == secret
    assert signer.new_secret() != secret


@pytest.mark.parametrize("scheme", SIGNED, ids=str)
def test_too_short_a_secret_is_refused(scheme: Scheme) -> None:
    with pytest.raises(InvalidRequest):
        VERIFIERS[scheme].check_secret("short")


# Standard Webhooks


def test_standard_agrees_with_the_reference_library() -> None:
    standard = VERIFIERS[Scheme.STANDARD]
    secret = standard.new_secret()
    now = datetime.now(UTC).timestamp()  # the library reads the clock itself
    reference = standardwebhooks.Webhook(secret)

    ours = signed_by(Scheme.STANDARD, secret, now=now)
    reference.verify(BODY, ours, json_parse=False)
    theirs = {"webhook-id": "msg_2", "webhook-timestamp": str(int(now)),
              "webhook-signature": reference.sign("msg_2", datetime.fromtimestamp(int(now), UTC),
                                                  BODY.decode())}
    assert standard.verify(theirs, BODY, [secret], now) == "msg_2"


def test_standard_matches_the_specification_example() -> None:
    # The example of the Standard Webhooks specification (and of the reference library).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
               "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    body = b'{"test": 2432232314}'

    assert VERIFIERS[Scheme.STANDARD].verify(headers, body, [secret], 1614265330) == (
        "msg_p5jXN8AQM9LWM0D4loKWxJek"
    )


def test_standard_accepts_one_of_several_signatures() -> None:
    standard = VERIFIERS[Scheme.STANDARD]
    old, new = standard.new_secret(), standard.new_secret()
    headers = signed_by(Scheme.STANDARD, old)
    other = signed_by(Scheme.STANDARD, new)["webhook-signature"]
    headers["webhook-signature"] = f"v2,AAAA v1,!!! {other} {headers['webhook-signature']}"

    assert standard.verify(headers, BODY, [new], NOW) == "msg_1"
    assert standard.verify(headers, BODY, [old], NOW) == "msg_1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_names_each_missing_header(missing: str) -> None:
    standard = VERIFIERS[Scheme.STANDARD]
    secret = standard.new_secret()
    headers = signed_by(Scheme.STANDARD, secret)
    del headers[missing]

    error = refused(Check.MISSING_HEADER, lambda: standard.verify(headers, BODY, [secret], NOW))
    assert missing in error.message


@pytest.mark.parametrize(
    ("header", "value"),
    [("webhook-timestamp", "yesterday"), ("webhook-timestamp", "1.7e9"),
     ("webhook-signature", "v1,not base64!"), ("webhook-signature", "v2,AAAA"),
     ("webhook-signature", "no-comma")],
)
def test_standard_refuses_malformed_headers(header: str, value: str) -> None:
    standard = VERIFIERS[Scheme.STANDARD]
    secret = standard.new_secret()
    headers = {**signed_by(Scheme.STANDARD, secret), header: value}

    refused(Check.MALFORMED_HEADER, lambda: standard.verify(headers, BODY, [secret], NOW))


def test_standard_signs_over_the_delivery_id_and_timestamp() -> None:
    standard = VERIFIERS[Scheme.STANDARD]
    secret = standard.new_secret()
    headers = {**signed_by(Scheme.STANDARD, secret), "webhook-id": "msg_other"}

    refused(Check.BAD_SIGNATURE, lambda: standard.verify(headers, BODY, [secret], NOW))


def test_standard_generates_whsec_base64_secrets() -> None:
    secret = VERIFIERS[Scheme.STANDARD].new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


@pytest.mark.parametrize("key", [b"x" * 8, b"x" * 65])
def test_standard_refuses_keys_outside_the_specified_length(key: bytes) -> None:
    with pytest.raises(InvalidRequest, match="24 to 64 bytes"):
        VERIFIERS[Scheme.STANDARD].check_secret("whsec_" + base64.b64encode(key).decode())


@pytest.mark.parametrize("secret", ["whsec_not*base64", "whsec_abcde"])
def test_standard_refuses_unusable_secrets(secret: str) -> None:
    with pytest.raises(InvalidRequest):
        VERIFIERS[Scheme.STANDARD].check_secret(secret)


# GitHub


def test_github_matches_its_documented_example() -> None:
    # docs.github.com, "Validating webhook deliveries": secret "It's a Secret to Everybody"
    headers = {"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4"
                                      "379c8b043e17", "x-github-delivery": "d-1"}

    assert VERIFIERS[Scheme.GITHUB].verify(
        headers, b"Hello, World!", ["It's a Secret to Everybody"], NOW) == "d-1"


def test_github_without_a_delivery_header_names_no_delivery() -> None:
    github = VERIFIERS[Scheme.GITHUB]
    secret = github.new_secret()
    headers = signed_by(Scheme.GITHUB, secret)
    del headers["x-github-delivery"]

    assert github.verify(headers, BODY, [secret], NOW) is None


def test_github_has_no_timestamp_to_go_stale() -> None:
    github = VERIFIERS[Scheme.GITHUB]
    secret = github.new_secret()

    assert github.verify(signed_by(Scheme.GITHUB, secret, now=0), BODY, [secret], NOW)


@pytest.mark.parametrize("value", ["sha1=0123", "sha256=xyz", "757107ea0e"])
def test_github_refuses_malformed_signatures(value: str) -> None:
    github = VERIFIERS[Scheme.GITHUB]
    headers = {"x-hub-signature-256": value}

    refused(Check.MALFORMED_HEADER, lambda: github.verify(headers, BODY, ["a-secret!"], NOW))


# Stripe


def stripe_header(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def test_stripe_accepts_any_of_several_v1_signatures() -> None:
    stripe = VERIFIERS[Scheme.STRIPE]
    old, new = stripe.new_secret(), stripe.new_secret()
    t = int(NOW)
    header = f"t={t},{stripe_header(old, BODY, t)},{stripe_header(new, BODY, t)},v0=abcd"

    assert stripe.verify({"stripe-signature": header}, BODY, [new], NOW) == "evt_1"


def test_stripe_signs_over_the_timestamp() -> None:
    stripe = VERIFIERS[Scheme.STRIPE]
    secret = stripe.new_secret()
    signed = signed_by(Scheme.STRIPE, secret)["stripe-signature"]
    moved = signed.replace(f"t={int(NOW)}", f"t={int(NOW) + 1}")

    refused(Check.BAD_SIGNATURE,
            lambda: stripe.verify({"stripe-signature": moved}, BODY, [secret], NOW))


@pytest.mark.parametrize("header", ["v1=abcd", f"t={int(NOW)}", "t=soon,v1=ab", "", "t=1,v1=zz"])
def test_stripe_refuses_malformed_headers(header: str) -> None:
    stripe = VERIFIERS[Scheme.STRIPE]
    check = Check.MISSING_HEADER if not header else Check.MALFORMED_HEADER

    headers = {"stripe-signature": header}

    refused(check, lambda: stripe.verify(headers, BODY, ["whsec_x123456"], NOW))


@pytest.mark.parametrize(
    ("body", "delivery"),
    [(b'{"id": "evt_9"}', "evt_9"), (b'{"id": 9}', None), (b"[1]", None), (b"id=evt_9", None),
     (b"{" * 100_000, None), (b"\xff{", None)],
)
def test_stripe_names_the_delivery_by_the_event_id_in_the_body(body: bytes,
                                                               delivery: str | None) -> None:
    stripe = VERIFIERS[Scheme.STRIPE]
    secret = stripe.new_secret()

    assert stripe.verify(signed_by(Scheme.STRIPE, secret, body), body, [secret], NOW) == delivery


# none, and the registry of schemes


def test_none_accepts_anything_and_names_no_delivery() -> None:
    unsigned = VERIFIERS[Scheme.NONE]

    assert unsigned.verify({}, b"anything", [], NOW) is None
    assert not unsigned.signed
    with pytest.raises(InvalidRequest):
        unsigned.check_secret("a-secret-after-all")


def test_every_scheme_has_a_verifier() -> None:
    assert set(VERIFIERS) == set(Scheme)
    assert all(VERIFIERS[s].scheme == s for s in Scheme)
    assert verifier("github") is VERIFIERS[Scheme.GITHUB]


def test_an_unknown_scheme_is_invalid() -> None:
    with pytest.raises(InvalidRequest, match="standard, github, stripe, none"):
        verifier("hmac-md5")


def test_header_names_are_matched_whatever_their_case() -> None:
    github = VERIFIERS[Scheme.GITHUB]
    headers = {k.upper(): v for k, v in signed_by(Scheme.GITHUB, "a-secret!").items()}

    assert github.verify(lower_case(headers), BODY, ["a-secret!"], NOW) == "msg_1"
