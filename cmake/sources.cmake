# Libraries and executables. Kernel files are globbed so adding an op is adding a file:
#   kernels/cpu/*.c          CPU reference ops
#   kernels/cuda/*.cu        hand-written CUDA kernels (also built for the emulation)
#   kernels/cuda/lib_*.cu    code that calls CUDA libraries / the runtime (cuBLAS, device
#                            management): real GPU only, never emulated
file(GLOB STORY_CPU_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cpu/*.c)
file(GLOB STORY_CUDA_ALL CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/*.cu)
set(STORY_CUDA_LIBCALL ${STORY_CUDA_ALL})
list(FILTER STORY_CUDA_LIBCALL INCLUDE REGEX "/lib_[^/]*\\.cu$")
set(STORY_CUDA_KERNELS ${STORY_CUDA_ALL})
list(FILTER STORY_CUDA_KERNELS EXCLUDE REGEX "/lib_[^/]*\\.cu$")

# story_core: tensor helpers and the CPU ops. No device code, no arena (arena.c needs
# story_cuda_malloc, which story_kernels or story_emu provides).
add_library(story_core STATIC kernels/tensor.c ${STORY_CPU_SOURCES})
target_include_directories(story_core PUBLIC ${CMAKE_SOURCE_DIR} ${CBLAS_INCLUDE_DIR})
target_link_libraries(story_core PUBLIC ${BLAS_LIBRARIES} OpenMP::OpenMP_C m)

# story_kernels: op_* dispatch + the CUDA back end (or its absence).
if(STORY_HAVE_CUDA)
  add_library(story_cuda STATIC ${STORY_CUDA_KERNELS} ${STORY_CUDA_LIBCALL})
  target_include_directories(story_cuda PUBLIC ${CMAKE_SOURCE_DIR})
  target_compile_options(story_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
  target_link_libraries(story_cuda PUBLIC CUDA::cudart CUDA::cublas)
  add_library(story_kernels STATIC kernels/ops.c kernels/arena.c)
  target_compile_definitions(story_kernels PUBLIC STORY_HAVE_CUDA=1)
  target_link_libraries(story_kernels PUBLIC story_core story_cuda)
else()
  add_library(story_kernels STATIC kernels/ops.c kernels/arena.c kernels/cuda_absent.c)
  target_link_libraries(story_kernels PUBLIC story_core)
endif()

# story_emu: the hand-written CUDA kernels compiled as C++ against the emulation
# runtime (tests only). Each .cu is included from a generated .cpp.
# ops.c gives the emulated build the same op_* dispatch as a CUDA build; emu_libcalls.cpp
# stands for the cuBLAS ops, which are not emulated.
set(STORY_EMU_SOURCES ${CMAKE_SOURCE_DIR}/kernels/emu/emu.cpp ${CMAKE_SOURCE_DIR}/kernels/arena.c
    ${CMAKE_SOURCE_DIR}/kernels/ops.c ${CMAKE_SOURCE_DIR}/kernels/emu/emu_libcalls.cpp)
foreach(cu ${STORY_CUDA_KERNELS})
  get_filename_component(stem ${cu} NAME_WE)
  set(wrapper ${CMAKE_BINARY_DIR}/emu/${stem}_emu.cpp)
  file(CONFIGURE OUTPUT ${wrapper} CONTENT "// generated: ${stem}.cu built for the emulation\n#include \"${cu}\"\n")
  list(APPEND STORY_EMU_SOURCES ${wrapper})
endforeach()
add_library(story_emu STATIC ${STORY_EMU_SOURCES})
target_include_directories(story_emu PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(story_emu PUBLIC story_core OpenMP::OpenMP_CXX Threads::Threads)
target_compile_definitions(story_emu PRIVATE STORY_HAVE_CUDA=1)  # ops.c: dispatch to cuda_*

# story_runtime: what every job shares (CLI helpers, comm, logging).
file(GLOB STORY_RUNNER_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/runner/*.c)
list(REMOVE_ITEM STORY_RUNNER_SOURCES ${CMAKE_SOURCE_DIR}/runner/main.c)
if(NOT STORY_HAVE_NCCL)
  # the comm layer's device-buffer back end needs NCCL (and the CUDA runtime)
  list(REMOVE_ITEM STORY_RUNNER_SOURCES ${CMAKE_SOURCE_DIR}/runner/comm_nccl.c)
endif()
file(GLOB STORY_JOB_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/jobs/*.c
     ${CMAKE_SOURCE_DIR}/models/*.c ${CMAKE_SOURCE_DIR}/partition/*.c)
add_library(story_runtime STATIC ${STORY_RUNNER_SOURCES} ${STORY_JOB_SOURCES})
target_include_directories(story_runtime PUBLIC ${CMAKE_SOURCE_DIR} ${HDF5_INCLUDE_DIRS})
target_compile_definitions(story_runtime PUBLIC
  STORY_VERSION="${PROJECT_VERSION}" STORY_GIT_COMMIT="${STORY_GIT_COMMIT}"
  $<$<BOOL:${STORY_HAVE_NCCL}>:STORY_HAVE_NCCL=1>)
target_link_libraries(story_runtime PUBLIC story_kernels MPI::MPI_C ${HDF5_C_LIBRARIES}
  PkgConfig::YAML PkgConfig::UTF8PROC PNG::PNG PkgConfig::FREETYPE PkgConfig::LIBAV
  PkgConfig::NETTLE)
if(STORY_HAVE_NCCL)
  target_include_directories(story_runtime PUBLIC ${NCCL_INCLUDE_DIR})
  target_link_libraries(story_runtime PUBLIC ${NCCL_LIBRARY} CUDA::cudart)
endif()

add_executable(storyrun runner/main.c)
target_link_libraries(storyrun PRIVATE story_runtime)
include(${CMAKE_SOURCE_DIR}/cmake/weights.cmake)  # zlib, the shipped CLIP vocabulary

if(STORY_TESTS)
  enable_testing()
  add_subdirectory(tests)
endif()
if(STORY_BENCH)
  add_subdirectory(bench)
endif()
