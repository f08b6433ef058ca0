// gen-mask Q/K input options for adaptive selectors (owned by the reference/analyze work).
// Not built yet: no options registered.
#include "apps/bsattn/gen_mask_extras.h"

namespace bsattn::app {

struct GenMaskInputOptions {};

std::shared_ptr<GenMaskInputOptions> add_gen_mask_input_options(CLI::App&) {
  return std::make_shared<GenMaskInputOptions>();
}
void prepare_gen_mask_inputs(const GenMaskInputOptions&, MaskRequest&, GenMaskPrepared&) {}

}  // namespace bsattn::app
