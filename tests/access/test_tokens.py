"""Bearer tokens: which JWTs the verifier accepts, the principal it makes, and why it refuses."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from promise.access.principal import Scope
from promise.access.tokens import MAX_TOKEN_CHARS, TokenError, TokenSettings, TokenVerifier

AUDIENCE = "promise-api"
ISSUER = "https://issuer.example"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclasses.dataclass(frozen=True)
class Keys:
    """One private key per algorithm family, and a stranger's RSA key."""

    rs: rsa.RSAPrivateKey
    es: ec.EllipticCurvePrivateKey
    ed: ed25519.Ed25519PrivateKey
    other: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    """Fresh keys, generated once for the module (RSA generation is slow)."""
    return Keys(
        rs=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        es=ec.generate_private_key(ec.SECP256R1()),
        ed=ed25519.Ed25519PrivateKey.generate(),
        other=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


def public_pem(key: PrivateKey) -> bytes:
    """The PEM (SubjectPublicKeyInfo) of the key's public half."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_pem(tmp_path: Path, key: PrivateKey) -> Path:
    """A PEM public key file for ``key``."""
    path = tmp_path / "issuer.pem"
    path.write_bytes(public_pem(key))
    return path


def jwk(key: PrivateKey, kid: str) -> dict[str, Any]:
    """The public JWK of ``key`` under ``kid``."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        entry = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        entry = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        entry = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**entry, "kid": kid, "use": "sig"}


def write_jwks(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    """A JWKS file holding ``entries``."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": list(entries)}))
    return path


def claims(**changes: Any) -> dict[str, Any]:
    """A valid claim set; a change to None drops that claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "svc-orders",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 300,
        "scope": "promise reserve",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(key: PrivateKey, alg: str, payload: dict[str, Any], kid: str | None = None) -> str:
    """A token signed by ``key`` with ``alg``."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    """Unpadded base64url, as JWS uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token built by hand: HMAC-SHA256 with ``secret``, or no signature at all."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def pem_verifier(tmp_path: Path, key: PrivateKey, **settings: Any) -> TokenVerifier:
    """A verifier trusting ``key``'s public PEM."""
    path = write_pem(tmp_path, key)
    return TokenVerifier(TokenSettings(audience=AUDIENCE, public_key_file=path, **settings))


def refusal(verifier: TokenVerifier, token: str) -> str:
    """The reason ``verifier`` refuses ``token`` (fails the test when it accepts it)."""
    with pytest.raises(TokenError) as raised:
        verifier.verify(token)
    return raised.value.reason


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_valid_token_gives_a_token_principal(tmp_path: Path, keys: Keys, alg: str) -> None:
    """A valid token from a PEM key becomes principal jwt:<sub> with the token's scopes."""
    by_alg: dict[str, PrivateKey] = {"RS256": keys.rs, "ES256": keys.es, "EdDSA": keys.ed}
    key = by_alg[alg]
    verifier = pem_verifier(tmp_path, key, issuer=ISSUER)
    principal = verifier.verify(sign(key, alg, claims()))
    assert principal.id == "jwt:svc-orders"
    assert principal.kind == "token"
    assert principal.name == "svc-orders"
    assert principal.scopes == frozenset({Scope.PROMISE, Scope.RESERVE})


def test_jwks_kid_picks_the_key(tmp_path: Path, keys: Keys) -> None:
    """Each token is checked with the JWKS key its kid names, whatever its family."""
    path = write_jwks(tmp_path, jwk(keys.rs, "r1"), jwk(keys.es, "e1"), jwk(keys.ed, "d1"))
    verifier = TokenVerifier(TokenSettings(audience=AUDIENCE, jwks_file=path))
    signers: list[tuple[PrivateKey, str, str]] = [
        (keys.rs, "RS256", "r1"),
        (keys.es, "ES256", "e1"),
        (keys.ed, "EdDSA", "d1"),
    ]
    for key, alg, kid in signers:
        token = sign(key, alg, claims(sub=kid), kid=kid)
        assert verifier.verify(token).id == f"jwt:{kid}"
    # The right signature under another key's kid is not enough.
    assert refusal(verifier, sign(keys.rs, "RS256", claims(), kid="e1")) == (
        "algorithm not allowed"
    )


def test_keys_are_loaded_once(tmp_path: Path, keys: Keys) -> None:
    """The key file is read at construction: removing it afterwards changes nothing."""
    path = write_pem(tmp_path, keys.es)
    verifier = TokenVerifier(TokenSettings(audience=AUDIENCE, public_key_file=path))
    path.unlink()
    assert verifier.verify(sign(keys.es, "ES256", claims())).name == "svc-orders"


def test_expired_token_is_refused(tmp_path: Path, keys: Keys) -> None:
    """A token expired beyond the leeway is refused as expired."""
    verifier = pem_verifier(tmp_path, keys.es)
    now = int(time.time())
    token = sign(keys.es, "ES256", claims(iat=now - 600, exp=now - 120))
    assert refusal(verifier, token) == "token expired"


def test_leeway_tolerates_small_clock_skew(tmp_path: Path, keys: Keys) -> None:
    """A token expired 10 s ago passes with the default 30 s leeway, not with none."""
    token = sign(keys.es, "ES256", claims(exp=int(time.time()) - 10))
    assert pem_verifier(tmp_path, keys.es).verify(token).name == "svc-orders"
    assert refusal(pem_verifier(tmp_path, keys.es, leeway_s=0), token) == "token expired"


def test_token_not_yet_valid_is_refused(tmp_path: Path, keys: Keys) -> None:
    """An nbf beyond the leeway in the future is refused."""
    token = sign(keys.es, "ES256", claims(nbf=int(time.time()) + 600))
    assert refusal(pem_verifier(tmp_path, keys.es), token) == "token not yet valid"


def test_wrong_audience_is_refused(tmp_path: Path, keys: Keys) -> None:
    """A token for another audience is refused; a list holding ours is accepted."""
    verifier = pem_verifier(tmp_path, keys.es)
    assert refusal(verifier, sign(keys.es, "ES256", claims(aud="billing"))) == "wrong audience"
    listed = sign(keys.es, "ES256", claims(aud=["billing", AUDIENCE]))
    assert verifier.verify(listed).name == "svc-orders"


def test_wrong_issuer_is_refused_when_issuer_set(tmp_path: Path, keys: Keys) -> None:
    """With an issuer configured, another 'iss' is refused and a missing one too."""
    verifier = pem_verifier(tmp_path, keys.es, issuer=ISSUER)
    other = sign(keys.es, "ES256", claims(iss="https://evil.example"))
    assert refusal(verifier, other) == "wrong issuer"
    assert refusal(verifier, sign(keys.es, "ES256", claims(iss=None))) == "missing claim 'iss'"
    # Without an issuer configured, 'iss' is not looked at.
    assert pem_verifier(tmp_path, keys.es).verify(other).name == "svc-orders"


@pytest.mark.parametrize("claim", ["sub", "exp", "aud"])
def test_missing_required_claim_is_refused(tmp_path: Path, keys: Keys, claim: str) -> None:
    """A token without sub, exp or aud is refused, naming the claim."""
    token = sign(keys.es, "ES256", claims(**{claim: None}))
    assert refusal(pem_verifier(tmp_path, keys.es), token) == f"missing claim {claim!r}"


@pytest.mark.parametrize("subject", ["", 42, "svc\nforged log line"])
def test_bad_subject_is_refused(tmp_path: Path, keys: Keys, subject: object) -> None:
    """An empty, non-string or unprintable subject never becomes a principal id."""
    token = sign(keys.es, "ES256", claims(sub=subject))
    assert refusal(pem_verifier(tmp_path, keys.es), token) == "bad subject"


def test_signature_by_another_key_is_refused(tmp_path: Path, keys: Keys) -> None:
    """A token signed by a key other than the issuer's fails the signature check."""
    token = sign(keys.other, "RS256", claims())
    assert refusal(pem_verifier(tmp_path, keys.rs), token) == "bad signature"


def test_tampered_claims_are_refused(tmp_path: Path, keys: Keys) -> None:
    """Changing the payload of a signed token (granting admin) breaks its signature."""
    header, _, signature = sign(keys.rs, "RS256", claims()).split(".")
    payload = b64(json.dumps(claims(scope="admin")).encode())
    tampered = f"{header}.{payload}.{signature}"
    assert refusal(pem_verifier(tmp_path, keys.rs), tampered) == "bad signature"


def test_unknown_or_missing_kid_is_refused(tmp_path: Path, keys: Keys) -> None:
    """With a JWKS, a kid it does not hold, or no kid at all, is refused."""
    path = write_jwks(tmp_path, jwk(keys.rs, "r1"))
    verifier = TokenVerifier(TokenSettings(audience=AUDIENCE, jwks_file=path))
    assert refusal(verifier, sign(keys.rs, "RS256", claims(), kid="r2")) == "unknown key id"
    assert refusal(verifier, sign(keys.rs, "RS256", claims())) == "missing key id"


def test_alg_none_is_refused(tmp_path: Path, keys: Keys) -> None:
    """An unsigned token (alg none) is refused, with a PEM key and with a JWKS."""
    pem = pem_verifier(tmp_path, keys.rs)
    assert refusal(pem, forge({"alg": "none", "typ": "JWT"}, claims(), None)) == (
        "algorithm not allowed"
    )
    jwks = TokenVerifier(
        TokenSettings(audience=AUDIENCE, jwks_file=write_jwks(tmp_path, jwk(keys.rs, "r1")))
    )
    unsigned = forge({"alg": "none", "kid": "r1"}, claims(), None)
    assert refusal(jwks, unsigned) == "algorithm not allowed"


def test_hs256_signed_with_the_public_key_is_refused(tmp_path: Path, keys: Keys) -> None:
    """The algorithm confusion attack: HMAC keyed with the public PEM is no signature."""
    pem = public_pem(keys.rs)
    token = forge({"alg": "HS256", "typ": "JWT"}, claims(scope="admin"), pem)
    assert refusal(pem_verifier(tmp_path, keys.rs), token) == "algorithm not allowed"
    # The same through a JWKS, keyed with the PEM or with the JWK's JSON.
    entry = jwk(keys.rs, "r1")
    jwks = TokenVerifier(TokenSettings(audience=AUDIENCE, jwks_file=write_jwks(tmp_path, entry)))
    for secret in (pem, json.dumps(entry).encode()):
        forged = forge({"alg": "HS256", "kid": "r1"}, claims(scope="admin"), secret)
        assert refusal(jwks, forged) == "algorithm not allowed"


@pytest.mark.parametrize("algorithms", [("HS256",), ("RS256", "none"), ()])
def test_symmetric_or_no_algorithms_are_refused_in_settings(
    tmp_path: Path, keys: Keys, algorithms: tuple[str, ...]
) -> None:
    """Settings allowing HS*, none or nothing at all do not make a verifier."""
    with pytest.raises(ValueError, match="algorithms"):
        pem_verifier(tmp_path, keys.rs, algorithms=algorithms)


def test_scp_list_gives_scopes(tmp_path: Path, keys: Keys) -> None:
    """The 'scp' claim as a list of names grants those scopes."""
    token = sign(keys.es, "ES256", claims(scope=None, scp=["inventory", "analyst"]))
    principal = pem_verifier(tmp_path, keys.es).verify(token)
    assert principal.scopes == frozenset({Scope.INVENTORY, Scope.ANALYST})


def test_unknown_scopes_are_ignored(tmp_path: Path, keys: Keys) -> None:
    """Scope names the service does not know are dropped; the known ones stay."""
    token = sign(keys.es, "ES256", claims(scope="openid promise Admin email"))
    assert pem_verifier(tmp_path, keys.es).verify(token).scopes == frozenset({Scope.PROMISE})


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"scope": None}, "no scopes"),
        ({"scope": "openid email"}, "no scopes"),
        ({"scope": None, "scp": []}, "no scopes"),
        ({"scope": ["promise"]}, "malformed scope claim"),
        ({"scope": None, "scp": ["promise", 3]}, "malformed scp claim"),
    ],
)
def test_token_without_known_scope_is_refused(
    tmp_path: Path, keys: Keys, changes: dict[str, Any], reason: str
) -> None:
    """No known scope, or a scope claim of the wrong shape, refuses the token."""
    token = sign(keys.es, "ES256", claims(**changes))
    assert refusal(pem_verifier(tmp_path, keys.es), token) == reason


def test_over_long_token_is_refused_before_parsing(tmp_path: Path, keys: Keys) -> None:
    """A token over the length cap is refused even when validly signed."""
    verifier = pem_verifier(tmp_path, keys.es)
    token = sign(keys.es, "ES256", claims(padding="x" * MAX_TOKEN_CHARS))
    assert len(token) > MAX_TOKEN_CHARS
    assert refusal(verifier, token) == "token too long"
    assert refusal(verifier, "." * (MAX_TOKEN_CHARS + 1)) == "token too long"


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c", "!!.e30.e30", "...."])
def test_garbage_is_a_malformed_token(tmp_path: Path, keys: Keys, token: str) -> None:
    """Strings that are not a JWS give 'malformed token', with a PEM key and a JWKS."""
    assert refusal(pem_verifier(tmp_path, keys.es), token) == "malformed token"
    jwks = TokenVerifier(
        TokenSettings(audience=AUDIENCE, jwks_file=write_jwks(tmp_path, jwk(keys.es, "e1")))
    )
    assert refusal(jwks, token) in {"malformed token", "missing key id"}


@pytest.mark.parametrize(
    "header",
    [b'{"alg": "ES256", "kid": 5}', b"[" * 2000 + b"]" * 2000, b"\xff\xfe", b"[]"],
)
def test_odd_jwks_header_is_refused(tmp_path: Path, keys: Keys, header: bytes) -> None:
    """A header whose kid is not a string, too deep, not UTF-8 or not an object is refused."""
    jwks = TokenVerifier(
        TokenSettings(audience=AUDIENCE, jwks_file=write_jwks(tmp_path, jwk(keys.es, "e1")))
    )
    _, payload, signature = sign(keys.es, "ES256", claims(), kid="e1").split(".")
    reason = refusal(jwks, f"{b64(header)}.{payload}.{signature}")
    assert reason == ("missing key id" if header == b"[]" else "malformed token")


def test_token_error_reason_does_not_echo_the_token(tmp_path: Path, keys: Keys) -> None:
    """The reason is one of the fixed short phrases, never text taken from the token."""
    token = forge({"alg": "ES256<script>"}, claims(), b"x")
    reason = refusal(pem_verifier(tmp_path, keys.es), token)
    assert reason == "algorithm not allowed"
    assert "script" not in str(TokenError(reason))


def test_settings_are_immutable() -> None:
    """TokenSettings cannot be changed after it is made."""
    settings = TokenSettings(audience=AUDIENCE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.audience = "other"  # type: ignore[misc]


def test_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    """A key file that does not exist fails construction, naming the setting."""
    with pytest.raises(ValueError, match=r"public_key_file .*cannot read"):
        TokenVerifier(TokenSettings(audience=AUDIENCE, public_key_file=tmp_path / "no.pem"))
    with pytest.raises(ValueError, match=r"jwks_file .*cannot read"):
        TokenVerifier(TokenSettings(audience=AUDIENCE, jwks_file=tmp_path / "no.json"))


def test_both_or_neither_key_source_is_an_error(tmp_path: Path, keys: Keys) -> None:
    """Exactly one of public_key_file and jwks_file must be set."""
    pem = write_pem(tmp_path, keys.rs)
    jwks = write_jwks(tmp_path, jwk(keys.rs, "r1"))
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(TokenSettings(audience=AUDIENCE, public_key_file=pem, jwks_file=jwks))
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(TokenSettings(audience=AUDIENCE))


def test_unusable_pem_is_an_error(tmp_path: Path, keys: Keys) -> None:
    """Not a public key, a key no allowed algorithm fits, or a short RSA key: all refused."""
    path = tmp_path / "key.pem"
    path.write_bytes(
        keys.es.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="not a PEM public key"):
        TokenVerifier(TokenSettings(audience=AUDIENCE, public_key_file=path))
    with pytest.raises(ValueError, match="none of the algorithms"):
        pem_verifier(tmp_path, keys.es, algorithms=("RS256",))
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="1024 bits"):
        pem_verifier(tmp_path, short)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"keys": "\x80"}', "not JSON"),
        (b'{"keys": []}', "not a JWKS"),
        (b'[{"kty": "RSA"}]', "not a JWKS"),
        (b'{"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}', "symmetric"),
        (b'{"keys": [{"kty": "RSA", "kid": "r", "alg": "HS256"}]}', "refused"),
        (b'{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}', "no 'kid'"),
        (b'{"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB"}]}', "not a usable JWK"),
    ],
)
def test_unusable_jwks_is_an_error(tmp_path: Path, document: bytes, message: str) -> None:
    """A JWKS file that is not JSON, empty, symmetric or broken fails construction."""
    path = tmp_path / "jwks.json"
    path.write_bytes(document)
    with pytest.raises(ValueError, match=message):
        TokenVerifier(TokenSettings(audience=AUDIENCE, jwks_file=path))


def test_jwks_with_private_key_or_duplicate_kid_is_an_error(tmp_path: Path, keys: Keys) -> None:
    """Private key material or a kid used twice in a JWKS fails construction."""
    private = {**json.loads(RSAAlgorithm.to_jwk(keys.rs)), "kid": "r1"}
    with pytest.raises(ValueError, match="private key material"):
        TokenVerifier(TokenSettings(audience=AUDIENCE, jwks_file=write_jwks(tmp_path, private)))
    twice = write_jwks(tmp_path, jwk(keys.rs, "k"), jwk(keys.es, "k"))
    with pytest.raises(ValueError, match="appears twice"):
        TokenVerifier(TokenSettings(audience=AUDIENCE, jwks_file=twice))


def test_jwks_key_for_an_algorithm_not_allowed_is_refused(tmp_path: Path, keys: Keys) -> None:
    """A JWKS key whose algorithm the settings leave out signs no accepted token."""
    path = write_jwks(tmp_path, jwk(keys.rs, "r1"), jwk(keys.es, "e1"))
    verifier = TokenVerifier(
        TokenSettings(audience=AUDIENCE, jwks_file=path, algorithms=("ES256",))
    )
    assert verifier.verify(sign(keys.es, "ES256", claims(), kid="e1")).name == "svc-orders"
    token = sign(keys.rs, "RS256", claims(), kid="r1")
    assert refusal(verifier, token) == "algorithm not allowed"
    # Nor does a key published for encryption.
    enc = write_jwks(tmp_path, {**jwk(keys.es, "e1"), "use": "enc"}, jwk(keys.ed, "d1"))
    verifier = TokenVerifier(TokenSettings(audience=AUDIENCE, jwks_file=enc))
    assert refusal(verifier, sign(keys.es, "ES256", claims(), kid="e1")) == "algorithm not allowed"


def test_pem_key_accepts_only_its_own_algorithm_family(tmp_path: Path, keys: Keys) -> None:
    """An EC key does not verify a token whose header claims RS256."""
    header, payload, _ = sign(keys.es, "ES256", claims()).split(".")
    rs_header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    _, _, rsa_signature = sign(keys.rs, "RS256", claims()).split(".")
    token = f"{rs_header}.{payload}.{rsa_signature}"
    assert header != rs_header
    assert refusal(pem_verifier(tmp_path, keys.es), token) == "algorithm not allowed"
