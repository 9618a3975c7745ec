// EnvelopeSizeCap (size_cap.h): the envelope size limit learned from a
// broker's refusals and acknowledgements.
#include "eport/uplink/size_cap.h"

#include <algorithm>

namespace eport::uplink {

EnvelopeSizeCap::Refusal EnvelopeSizeCap::refused(std::size_t bytes, std::size_t readings) {
  if (bytes == 0) return Refusal::kNothingToLearn;
  if (readings == 1) return Refusal::kOneReading;
  const std::size_t taken = largest_acked_ < bytes ? largest_acked_ : 0;
  cap_ = std::min(cap_, std::max<std::size_t>({bytes / 2, taken, 1}));
  return Refusal::kCapLowered;
}

void EnvelopeSizeCap::acknowledged(std::size_t bytes) {
  largest_acked_ = std::max(largest_acked_, bytes);
  if (learned()) cap_ = std::max(cap_, bytes);
}

}  // namespace eport::uplink
