"""Bearer tokens: JWTs signed by an external issuer, verified against its public keys.

The keys are read once, when the verifier is built (a PEM public key, or a JWKS file whose
``kid`` picks the key); a request then costs one signature check and the claim checks. Only
asymmetric algorithms are ever accepted: ``none`` and the HS* family are refused outright,
because an HMAC "verified" with a public key lets anyone who has that public key mint tokens.

Measured cost of :meth:`TokenVerifier.verify` on a valid token (timeit, best of 7 runs of 5000
calls, one call at a time; CPython 3.11, PyJWT 2.15, cryptography 50 on OpenSSL 4, a shared
2-core VM whose runs under load came out up to 1.5x slower):

    =====  ==============  ========  =========  ================
    alg    key             PEM file  JWKS file  signature alone
    =====  ==============  ========  =========  ================
    RS256  RSA 2048 bits     62 µs      65 µs             20 µs
    ES256  P-256            100 µs     105 µs             74 µs
    EdDSA  Ed25519          138 µs     145 µs            105 µs
    =====  ==============  ========  =========  ================

RSA *verification* (public exponent 65537) is the cheapest of the three; it is RSA signing, on
the issuer's side, that is slow. The ~40 µs beyond the signature is PyJWT's own parsing and
claim checks. All stay inside the 0.3 ms a request may spend on authentication.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import AllowedPublicKeys

from promise.access.principal import Principal, Scope

__all__ = ["MAX_TOKEN_CHARS", "TokenError", "TokenSettings", "TokenVerifier"]

MAX_TOKEN_CHARS: Final = 8 * 1024
# A key shorter than this is refused when loaded, so PyJWT never has to warn about it per request.
MIN_RSA_BITS: Final = 2048

_RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHM_BY_CURVE: Final = {
    "secp256r1": "ES256",
    "secp384r1": "ES384",
    "secp521r1": "ES512",
    "secp256k1": "ES256K",
}
_ASYMMETRIC_ALGORITHMS: Final = _RSA_ALGORITHMS | set(_EC_ALGORITHM_BY_CURVE.values()) | {"EdDSA"}
_REQUIRED_CLAIMS: Final = ["exp", "aud", "sub"]
_SCOPE_BY_NAME: Final = {scope.value: scope for scope in Scope}

# Most specific first: InvalidSignatureError is a DecodeError, and every one an InvalidTokenError.
_REASONS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidIssuedAtError, "bad issued-at time"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.DecodeError, "malformed token"),
    (jwt.InvalidKeyError, "key does not fit the algorithm"),
)


class TokenError(Exception):
    """A bearer token was refused; ``reason`` is short and safe to show the client."""

    def __init__(self, reason: str) -> None:
        """Refuse a token for ``reason``."""
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """Which tokens to accept: for whom, from whom, signed by which keys and algorithms."""

    audience: str  # the token's 'aud' must be (or contain) it
    issuer: str | None = None  # when set, the token's 'iss' must equal it
    public_key_file: Path | None = None  # PEM public key: RSA, EC or Ed25519
    jwks_file: Path | None = None  # JWKS JSON; the token's 'kid' picks the key
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    leeway_s: int = 30  # clock skew tolerated on exp, nbf and iat


@dataclass(frozen=True, slots=True)
class _Key:
    """A public key and the algorithms a token signed by it may name."""

    key: AllowedPublicKeys
    algorithms: list[str]  # a list because that is what PyJWT's decode takes


class TokenVerifier:
    """Checks bearer tokens against keys loaded once; safe to share between threads."""

    def __init__(self, settings: TokenSettings) -> None:
        """Load the keys ``settings`` names; ValueError when they are missing or unusable."""
        _check_settings(settings)
        self._settings = settings
        # A private instance, so algorithms registered on PyJWT's global one never apply here.
        # The subject is checked below instead (PyJWT < 2.10 does not check it at all).
        self._jwt = jwt.PyJWT(
            options={
                "require": list(_REQUIRED_CLAIMS),
                "verify_sub": False,
                "enforce_minimum_key_length": True,
            }
        )
        self._key: _Key | None = None
        self._keys_by_kid: dict[str, _Key] = {}
        self._unusable_kids: frozenset[str] = frozenset()
        if settings.public_key_file is not None:
            self._key = _load_pem(settings.public_key_file, settings.algorithms)
        elif settings.jwks_file is not None:
            self._keys_by_kid, self._unusable_kids = _load_jwks(
                settings.jwks_file, settings.algorithms
            )

    def verify(self, token: str) -> Principal:
        """The principal a valid token stands for; TokenError saying why when it is not valid."""
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenError("token too long")
        key = self._key if self._key is not None else self._key_for(token)
        try:
            claims = self._jwt.decode(
                token,
                key.key,
                algorithms=key.algorithms,
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_s,
            )
        except jwt.MissingRequiredClaimError as err:
            raise TokenError(f"missing claim {err.claim!r}") from err
        except jwt.PyJWTError as err:
            raise TokenError(_reason(err)) from err
        subject = claims["sub"]
        # The subject becomes a principal id that lands in logs and the audit trail.
        if not isinstance(subject, str) or not subject or not subject.isprintable():
            raise TokenError("bad subject")
        return Principal(id="jwt:" + subject, kind="token", scopes=_scopes(claims), name=subject)

    def _key_for(self, token: str) -> _Key:
        """The JWKS key the token's (not yet trusted) ``kid`` header names."""
        # Decoded here rather than with jwt.get_unverified_header, which decodes and validates
        # all three segments (~15-25 µs more); PyJWT still checks the whole token afterwards.
        # A header read differently here than there can only pick a key that then fails.
        segment = token.partition(".")[0]
        try:
            header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (ValueError, binascii.Error, RecursionError) as err:
            raise TokenError("malformed token") from err
        kid = header.get("kid") if isinstance(header, dict) else None
        if kid is None:
            raise TokenError("missing key id")
        if not isinstance(kid, str):
            raise TokenError("malformed token")
        found = self._keys_by_kid.get(kid)
        if found is None:
            if kid in self._unusable_kids:
                raise TokenError("algorithm not allowed")
            raise TokenError("unknown key id")
        return found


def _reason(err: jwt.PyJWTError) -> str:
    """The client-safe reason for a PyJWT error (its own message may quote token contents)."""
    for kind, reason in _REASONS:
        if isinstance(err, kind):
            return reason
    return "invalid token"


def _scopes(claims: Mapping[str, Any]) -> frozenset[Scope]:
    """The known scopes the token grants, from 'scope' (space-separated) and/or 'scp'."""
    names: list[str] = []
    scope = claims.get("scope")
    if scope is not None:
        if not isinstance(scope, str):
            raise TokenError("malformed scope claim")
        names.extend(scope.split())
    scp = claims.get("scp")
    if scp is not None:
        # Some issuers (Azure AD among them) put a space-separated string in 'scp' too.
        if isinstance(scp, str):
            names.extend(scp.split())
        elif isinstance(scp, list) and all(isinstance(name, str) for name in scp):
            names.extend(scp)
        else:
            raise TokenError("malformed scp claim")
    scopes = frozenset(_SCOPE_BY_NAME[name] for name in names if name in _SCOPE_BY_NAME)
    if not scopes:
        raise TokenError("no scopes")
    return scopes


def _check_settings(settings: TokenSettings) -> None:
    """ValueError for settings no verifier could work with."""
    if (settings.public_key_file is None) == (settings.jwks_file is None):
        raise ValueError("token settings: set exactly one of public_key_file and jwks_file")
    if not settings.audience:
        raise ValueError("token settings: audience must not be empty")
    if settings.leeway_s < 0:
        raise ValueError("token settings: leeway_s must not be negative")
    if not settings.algorithms:
        raise ValueError("token settings: algorithms must not be empty")
    refused = [alg for alg in settings.algorithms if alg not in _ASYMMETRIC_ALGORITHMS]
    if refused:
        raise ValueError(
            f"token settings: algorithms {refused} are refused; "
            f"only asymmetric ones are accepted ({', '.join(sorted(_ASYMMETRIC_ALGORITHMS))})"
        )


def _read(path: Path, what: str) -> bytes:
    """The file's bytes; ValueError naming the setting when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise ValueError(f"{what} {path}: cannot read it ({err.strerror})") from err


def _load_pem(path: Path, allowed: tuple[str, ...]) -> _Key:
    """The PEM public key in ``path`` with the allowed algorithms that fit its type."""
    pem = _read(path, "public_key_file")
    try:
        loaded = load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise ValueError(f"public_key_file {path}: not a PEM public key") from err
    key: AllowedPublicKeys
    if isinstance(loaded, rsa.RSAPublicKey):
        _check_rsa_size(loaded, f"public_key_file {path}")
        fitting = _RSA_ALGORITHMS
        key = loaded
    elif isinstance(loaded, ec.EllipticCurvePublicKey):
        curve_alg = _EC_ALGORITHM_BY_CURVE.get(loaded.curve.name)
        fitting = frozenset({curve_alg} if curve_alg else ())
        key = loaded
    elif isinstance(loaded, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        fitting = frozenset({"EdDSA"})
        key = loaded
    else:
        raise ValueError(f"public_key_file {path}: unsupported key type {type(loaded).__name__}")
    algorithms = [alg for alg in allowed if alg in fitting]
    if not algorithms:
        raise ValueError(
            f"public_key_file {path}: none of the algorithms {list(allowed)} fits its "
            f"{type(loaded).__name__}"
        )
    return _Key(key, algorithms)


def _check_rsa_size(key: rsa.RSAPublicKey, where: str) -> None:
    """ValueError for an RSA key too short to trust."""
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"{where}: RSA key of {key.key_size} bits; at least {MIN_RSA_BITS}")


def _load_jwks(path: Path, allowed: tuple[str, ...]) -> tuple[dict[str, _Key], frozenset[str]]:
    """The JWKS signing keys by kid, and the kids of keys that may not sign a token here.

    A JWK names one algorithm (its 'alg', else the one its type implies), and a token signed
    by it must name that same algorithm.
    """
    raw = _read(path, "jwks_file")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise ValueError(f"jwks_file {path}: not JSON ({type(err).__name__})") from err
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"jwks_file {path}: not a JWKS (expected a non-empty 'keys' list)")
    keys: dict[str, _Key] = {}
    unusable: set[str] = set()
    for n, entry in enumerate(entries):
        where = f"jwks_file {path}, key {n}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: not a JSON object")
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ValueError(f"{where}: no 'kid'; tokens pick their key by it")
        where = f"jwks_file {path}, key {kid!r}"
        if kid in keys or kid in unusable:
            raise ValueError(f"{where}: the kid appears twice")
        if entry.get("kty") == "oct":
            raise ValueError(f"{where}: a symmetric (oct) key; only public keys are accepted")
        alg = entry.get("alg")
        if alg is not None and alg not in _ASYMMETRIC_ALGORITHMS:
            raise ValueError(f"{where}: algorithm {alg!r} is refused; only asymmetric ones")
        if "d" in entry:
            raise ValueError(f"{where}: holds private key material; publish only public keys")
        if entry.get("use", "sig") != "sig":
            unusable.add(kid)  # an encryption key never signs a token
            continue
        try:
            parsed = jwt.PyJWK(entry)
            # Fails here, not per request, when the key does not fit its 'alg' (an EC curve).
            parsed.Algorithm.prepare_key(parsed.key)
        except (jwt.PyJWTError, TypeError, ValueError) as err:
            # Not chained: PyJWT's message repeats the whole JWK.
            raise ValueError(f"{where}: not a usable JWK ({type(err).__name__})") from None
        if isinstance(parsed.key, rsa.RSAPublicKey):
            _check_rsa_size(parsed.key, where)
        if parsed.algorithm_name in allowed:
            keys[kid] = _Key(parsed.key, [parsed.algorithm_name])
        else:
            unusable.add(kid)
    if not keys:
        raise ValueError(f"jwks_file {path}: no signing key for the algorithms {list(allowed)}")
    return keys, frozenset(unusable)
