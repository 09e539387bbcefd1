// zmanager: Python's multiprocessing.managers for C++ — an object server with typed proxies over
// ZeroMQ and msgpack. This umbrella header is all a user needs.
#pragma once

#include "zmanager/batch.hpp"
#include "zmanager/boost_serialization.hpp"
#include "zmanager/bytes.hpp"
#include "zmanager/call.hpp"
#include "zmanager/connection.hpp"
#include "zmanager/errors.hpp"
#include "zmanager/expose.hpp"
#include "zmanager/future.hpp"
#include "zmanager/manager.hpp"
#include "zmanager/pipe.hpp"
#include "zmanager/proxy.hpp"
#include "zmanager/registry.hpp"
#include "zmanager/server.hpp"
#include "zmanager/shareable_list.hpp"
#include "zmanager/shared_memory.hpp"
#include "zmanager/shared_memory_manager.hpp"
#include "zmanager/shared_value.hpp"
#include "zmanager/sync.hpp"
#include "zmanager/value.hpp"
