// Every op family of the core.
#pragma once
#include "ops/conv2d.h"
#include "ops/gemm.h"
#include "ops/tensor_ops.h"
