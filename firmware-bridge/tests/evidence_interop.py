# Independent check of the evidence format (docs/evidence.md) with Debian's
# python3-cbor2, python3-nacl (libsodium, Ed25519), python3-cryptography
# (ES256) and hashlib, none of which shares
# code with eport::epb: decodes every COSE_Sign1 checkpoint that
# `epb-evidence demo` wrote, rebuilds its Sig_structure with cbor2's canonical
# encoder, verifies Ed25519 signatures with libsodium, recomputes the hash
# chain over the canonical readings and checks head, count, prev and ranges.
# Usage: /usr/bin/python3 evidence_interop.py DIR   (exit 0: all verified)
import hashlib, sys
import cbor2, nacl.signing

d = sys.argv[1]
src, alg, kid_hex, pub_hex = open(d + '/key.txt').read().split()
alg, kid, pub = int(alg), bytes.fromhex(kid_hex), bytes.fromhex(pub_hex)
readings = [bytes.fromhex(l) for l in open(d + '/readings.hex').read().split()]
checkpoints = [bytes.fromhex(l) for l in open(d + '/checkpoints.hex').read().split()]

def seq_of(r):  # the READING payload starts at body offset 2 with seq:u64le
    return int.from_bytes(r[2:10], 'little')

head = hashlib.sha256(b'eport-ev1 genesis' + bytes([len(src)]) + src.encode()).digest()
by_seq = {seq_of(r): r for r in readings}
assert len(by_seq) == len(readings)
prev_id, prev_last, n_expected, covered = None, None, 1, 0
for raw in checkpoints:
    msg = cbor2.loads(raw)
    assert isinstance(msg, cbor2.CBORTag) and msg.tag == 18, 'not a tagged COSE_Sign1'
    protected, unprotected, payload, sig = msg.value
    assert cbor2.dumps(msg, canonical=True) == raw, 'not canonical CBOR'
    hdr = cbor2.loads(protected)
    assert hdr == {1: alg, 4: kid} and unprotected == {}
    tbs = cbor2.dumps(['Signature1', protected, b'', payload], canonical=True)
    if alg == -8:
        nacl.signing.VerifyKey(pub).verify(tbs, sig)  # raises if it does not verify
    else:  # ES256: COSE's r||s as the DER that python3-cryptography (OpenSSL) takes
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils
        der = utils.encode_dss_signature(int.from_bytes(sig[:32], 'big'), int.from_bytes(sig[32:], 'big'))
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pub).verify(
            der, tbs, ec.ECDSA(hashes.SHA256()))
    p = cbor2.loads(payload)
    assert p[1] == src and p[2] == n_expected
    if prev_id is None:
        assert 7 not in p
    else:
        assert p[7] == prev_id and p[3] == prev_last + 1
    seqs = [s for s in range(p[3], p[4] + 1) if s in by_seq]
    assert len(seqs) == p[5], 'count'
    for s in seqs:
        head = hashlib.sha256(b'eport-ev1 link' + head + s.to_bytes(8, 'little') + by_seq[s]).digest()
    assert head == p[6], 'head of checkpoint %d' % p[2]
    prev_id, prev_last, n_expected = hashlib.sha256(tbs).digest(), p[4], n_expected + 1
    covered += len(seqs)
assert covered == len(readings)
print('%s: %d checkpoints, %d readings verified independently (cbor2, %s, hashlib)'
      % (src, len(checkpoints), covered, 'libsodium' if alg == -8 else 'python3-cryptography'))
