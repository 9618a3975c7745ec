# Warning and sanitizer flags for the project's own targets only
# (never applied to third-party code). Call eport_target_defaults(t).
function(eport_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Wold-style-cast>)
  if(EPORT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(EPORT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
