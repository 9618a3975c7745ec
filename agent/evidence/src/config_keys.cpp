// The [evidence] key rows (docs/config.md).
#include "eport/evidence/config_keys.h"

namespace eport::evidence {

namespace {

config::Keys<EvidenceOptions> build() {
  using O = EvidenceOptions;
  config::Keys<O> k;
  k.add(config::string<O>("evidence.gateway_key",
                          "PEM private key (Ed25519 or P-256, as `eport-pki evidence-key PKIDIR <gateway id>` issues "
                          "it) that signs the checkpoints of the gateway's own GNSS readings, source <gateway id> "
                          "(docs/evidence.md 13.4). Empty: they are not chained.",
                          EPORT_OPTION(O, gateway_key_file), {}, config::FileKind::kPrivateKey));
  k.add(config::string<O>("evidence.custody_key",
                          "PEM private key that signs the checkpoints of the derived custody events, source "
                          "<gateway id>:custody (`eport-pki evidence-key PKIDIR <gateway id>:custody`). Empty: they "
                          "are not chained.",
                          EPORT_OPTION(O, custody_key_file), {}, config::FileKind::kPrivateKey));
  k.add(config::string<O>("evidence.gateway_previous_key",
                          "Key rotation: the key evidence.gateway_key replaces. The chain made under it continues: "
                          "its next checkpoint, signed with this key, announces the new one, and the checkpoints "
                          "after it are signed with the new one (docs/evidence.md 13.4). Remove it after that.",
                          EPORT_OPTION(O, gateway_previous_key_file), {}, config::FileKind::kPrivateKey));
  k.add(config::string<O>("evidence.custody_previous_key", "Key rotation for evidence.custody_key, as "
                          "evidence.gateway_previous_key.",
                          EPORT_OPTION(O, custody_previous_key_file), {}, config::FileKind::kPrivateKey));
  k.add(config::integer<O>("evidence.checkpoint_every_readings", 0, 1000000,
                           "A checkpoint once this many of a source's records are uncovered (0: no count rule); one "
                           "is made at once after every alarm anyway.",
                           EPORT_OPTION(O, checkpoint_every_readings)));
  k.add(config::duration<O>("evidence.checkpoint_every_s", 0, 7 * 24 * 3600,
                            "A checkpoint this long after a source's first uncovered record (0: no time rule): "
                            "the longest the newest records stay unverified.",
                            EPORT_OPTION(O, checkpoint_every)));
  return k;
}

}  // namespace

const config::Keys<EvidenceOptions>& config_keys() {
  static const config::Keys<EvidenceOptions> keys = build();
  return keys;
}

}  // namespace eport::evidence
