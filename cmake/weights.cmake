# Model weights (models/weights*.c): zlib for gzipped tokenizer files, and the CLIP
# vocabulary storyrun ships for single-file checkpoints (they carry no tokenizer).
#   <build>/share/storyrun/clip/{sd15,sdxl_2}/      copied at configure time
#   <prefix>/share/storyrun/clip/{sd15,sdxl_2}/     `cmake --install`
# sd15 pads with <|endoftext|> (SD1.x, SDXL's first tokenizer), sdxl_2 with "!" (SD2.x,
# SDXL's second). vocab.json.gz and merges.txt.gz are tests/golden/tokenizer's (real CLIP).
# models/weights.c looks for them next to the executable, then at the paths below.
include(GNUInstallDirs)
find_package(ZLIB REQUIRED)
target_link_libraries(story_runtime PUBLIC ZLIB::ZLIB)

set(STORY_CLIP_SOURCE ${CMAKE_SOURCE_DIR}/tests/golden/tokenizer)
set(STORY_CLIP_BUILD_DIR ${CMAKE_BINARY_DIR}/share/storyrun/clip)
set(STORY_CLIP_INSTALL_DIR ${CMAKE_INSTALL_FULL_DATADIR}/storyrun/clip)
foreach(style sd15 sdxl_2)
  set(files ${STORY_CLIP_SOURCE}/vocab.json.gz ${STORY_CLIP_SOURCE}/merges.txt.gz
            ${STORY_CLIP_SOURCE}/${style}/tokenizer_config.json
            ${STORY_CLIP_SOURCE}/${style}/special_tokens_map.json)
  foreach(f ${files})
    get_filename_component(name ${f} NAME)
    configure_file(${f} ${STORY_CLIP_BUILD_DIR}/${style}/${name} COPYONLY)
  endforeach()
  install(FILES ${files} DESTINATION ${CMAKE_INSTALL_DATADIR}/storyrun/clip/${style})
endforeach()
target_compile_definitions(story_runtime PRIVATE STORY_CLIP_BUILD_DIR="${STORY_CLIP_BUILD_DIR}"
                                                 STORY_CLIP_INSTALL_DIR="${STORY_CLIP_INSTALL_DIR}")
install(TARGETS storyrun RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
