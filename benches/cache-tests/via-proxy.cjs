// Preloaded into the cache-tests client (node -r): sends every request it
// makes through the forward proxy in CACHE_TESTS_PROXY, in absolute form
// (GET http://origin/path), as a browser configured with a proxy does. The
// suite's own client only talks to a reverse proxy at its base URL; this
// lets it test forward proxies (bugpack's, and squid's) unchanged.
'use strict'
const http = require('http')

const proxy = new URL(process.env.CACHE_TESTS_PROXY)
const request = http.request

http.request = function (options, callback) {
  if (options && typeof options === 'object' && !(options instanceof URL) &&
      typeof options.path === 'string' && options.path.startsWith('/')) {
    const origin = `http://${options.hostname || options.host}:${options.port || 80}`
    options = Object.assign({}, options, {
      protocol: 'http:',
      hostname: proxy.hostname,
      host: proxy.hostname,
      port: proxy.port,
      path: origin + options.path,
      agent: undefined
    })
  }
  return request.call(this, options, callback)
}
