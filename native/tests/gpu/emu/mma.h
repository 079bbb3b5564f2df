// The CUDA emulator stands in for <mma.h> (see cuda_emu.h).
#pragma once
#include "cuda_emu.h"
