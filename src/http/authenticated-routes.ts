/** Hooks that run only on the routes whose operation authenticates (every key route, /metrics), in their declared order. */
import type { FastifyInstance, onRequestHookHandler, preHandlerHookHandler } from 'fastify'

interface HookOf {
  onRequest: onRequestHookHandler
  preHandler: preHandlerHookHandler
}

/** Adds `hook` to the `phase` hooks of every authenticating route declared from now on: after those it has, or `first`. */
export function hookAuthenticatedRoutes<P extends keyof HookOf>(app: FastifyInstance, phase: P, hook: HookOf[P], at: 'first' | 'last' = 'last'): void {
  app.addHook('onRoute', (route) => {
    if (!route.config?.operation?.authenticates) return
    const present = route[phase] as HookOf[P] | HookOf[P][] | undefined
    const hooks = Array.isArray(present) ? present : present ? [present] : []
    route[phase] = (at === 'first' ? [hook, ...hooks] : [...hooks, hook]) as never
  })
}
