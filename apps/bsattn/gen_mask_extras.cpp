#include "apps/bsattn/gen_mask_extras.h"

#include "lib/error.h"

namespace bsattn::app {

void add_gen_mask_extras(CLI::App& sub, GenMaskExtras& e) {
  (void)sub;
  (void)e;
}

GenMaskPrepared prepare_gen_mask_extras(const GenMaskExtras& e, MaskRequest& req) {
  (void)e;
  (void)req;
  return {};
}

void finish_gen_mask_extras(const GenMaskExtras& e, const GenMaskPrepared& p, BlockMask& m) {
  (void)e;
  (void)p;
  (void)m;
}

}  // namespace bsattn::app
