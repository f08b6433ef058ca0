// gen-mask token-order options (owned by the curves work). Not built yet: no options registered.
#include "apps/bsattn/gen_mask_extras.h"

namespace bsattn::app {

struct GenMaskOrderOptions {};

std::shared_ptr<GenMaskOrderOptions> add_gen_mask_order_options(CLI::App&) {
  return std::make_shared<GenMaskOrderOptions>();
}
void prepare_gen_mask_order(const GenMaskOrderOptions&, MaskRequest&, GenMaskPrepared&) {}
void finish_gen_mask_order(const GenMaskOrderOptions&, const GenMaskPrepared&, BlockMask&) {}

}  // namespace bsattn::app
