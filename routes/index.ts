/** Every route the service serves, listed explicitly; each file implements one operation of openapi.yaml. */
import batchRewrap from './batch-rewrap.js'
import batchUnwrap from './batch-unwrap.js'
import generateDataKey from './generate-data-key.js'
import getKey from './get-key.js'
import health from './health.js'
import listKeys from './list-keys.js'
import metrics from './metrics.js'
import openapi from './openapi.js'
import purgeCache from './purge-cache.js'
import readiness from './readiness.js'
import rewrap from './rewrap.js'
import unwrap from './unwrap.js'
import wrap from './wrap.js'
import type { RouteDefinition } from './route.js'

export const routes: readonly RouteDefinition[] = [
  generateDataKey,
  wrap,
  unwrap,
  rewrap,
  batchUnwrap,
  batchRewrap,
  purgeCache,
  listKeys,
  getKey,
  health,
  readiness,
  metrics,
  openapi,
]
