// cuda_backend.h — entry points of the CUDA backend (src/cuda/), called by backend.c only when the
// build has CUDA (CLIPNEG_HAVE_CUDA). Plain C linkage so the C core can call them.
#ifndef CLIPNEG_CUDA_BACKEND_H
#define CLIPNEG_CUDA_BACKEND_H

#include "clipneg/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// Number of visible CUDA devices (0 when the driver/runtime finds none; never fails).
int clipneg_cuda_device_count(void);
// Fill *be with the CUDA implementation on device `device`. CN_OK or CN_E_CONFIG with a message.
int cuda_backend_init(Backend *be, Precision prec, const ClipModel *m, int device);

#ifdef __cplusplus
}
#endif

#endif
