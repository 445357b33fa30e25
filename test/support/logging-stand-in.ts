/**
 * A Cloud Logging stand-in for tests: google.logging.v2.LoggingServiceV2 over real gRPC on 127.0.0.1,
 * built from the .proto files that ship with @google-cloud/logging's API client, so that the real
 * client (and keywrap's cloud-logging sink) talks to it unchanged:
 *
 *   new CloudLoggingAuditSink({ projectId, logName, emulatorHost: standIn.address })
 *
 * It records every WriteLogEntries call (logName, labels, resource, entries with the request's
 * defaults applied, jsonPayload decoded to plain JSON), answers after a scriptable latency, and can
 * fail calls with a gRPC status. Like the real service, an entry is written when the call is answered
 * OK, even if the client has given up on it by then. Every other method answers UNIMPLEMENTED.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import * as protoLoader from '@grpc/proto-loader'
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js'

const SERVICE = 'google.logging.v2.LoggingServiceV2'

export interface LoggingStandInFaults {
  /** Delay before answering each WriteLogEntries call. */
  latencyMs?: number
  /** Answer WriteLogEntries with this status (e.g. status.UNAVAILABLE) instead of OK … */
  failWith?: status
  /** … for this many calls, then OK again; unset: until the faults change. */
  failCalls?: number
}

export interface RecordedEntry {
  logName: string
  resource: unknown
  severity: string
  insertId: string
  labels: Record<string, string>
  /** RFC 3339 with nanoseconds, as Cloud Logging exports it. */
  timestamp: string
  trace?: string
  spanId?: string
  operation?: { id: string; producer: string }
  jsonPayload?: Record<string, unknown>
  textPayload?: string
}

export interface RecordedCall {
  logName: string
  labels: Record<string, string>
  resource: unknown
  partialSuccess: boolean
  entries: RecordedEntry[]
  /** performance.now() when the call arrived and when it was answered. */
  receivedAt: number
  answeredAt?: number
  /** `OK` or the status name it was answered with; undefined while unanswered. */
  outcome?: string
}

export interface RunningLoggingStandIn {
  port: number
  /** `127.0.0.1:PORT`, for LOGGING_EMULATOR_HOST. */
  address: string
  close(): Promise<void>
}

export class LoggingStandIn {
  /** Every WriteLogEntries call, answered or not, OK or not. */
  readonly calls: RecordedCall[] = []
  faults: LoggingStandInFaults = {}
  private readonly written: RecordedEntry[] = []
  private readonly parked = new Set<NodeJS.Timeout>()
  private server: Server | undefined

  /** The entries written (in calls answered OK), in the order written. */
  get entries(): readonly RecordedEntry[] {
    return this.written
  }

  /** The written entries as a log sink exports them: one LogEntry as JSON per line. */
  exportLines(): string[] {
    return this.written.map((entry) => JSON.stringify({ ...entry, receiveTimestamp: entry.timestamp }))
  }

  reset(): void {
    this.calls.length = 0
    this.written.length = 0
    this.faults = {}
  }

  async start(): Promise<RunningLoggingStandIn> {
    if (this.server) throw new Error('LoggingStandIn is already running')
    const server = new Server()
    server.addService(loggingServiceDefinition(), this.implementation())
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    )
    this.server = server
    return {
      port,
      address: `127.0.0.1:${port}`,
      close: async () => {
        for (const timer of this.parked) clearTimeout(timer)
        this.parked.clear()
        server.forceShutdown()
        this.server = undefined
      },
    }
  }

  private implementation(): UntypedServiceImplementation {
    const implementation: UntypedServiceImplementation = {}
    for (const method of Object.keys(loggingServiceDefinition())) {
      implementation[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        if (method === 'WriteLogEntries') this.writeLogEntries(call.request as WriteRequest, callback)
        else callback({ code: status.UNIMPLEMENTED, details: `${method} is not implemented by the stand-in` }, null)
      }
    }
    return implementation
  }

  private writeLogEntries(request: WriteRequest, callback: sendUnaryData<unknown>): void {
    const labels = { ...request.labels }
    const call: RecordedCall = {
      logName: request.logName ?? '',
      labels,
      resource: request.resource,
      partialSuccess: request.partialSuccess ?? false,
      entries: (request.entries ?? []).map((entry) => recordEntry(entry, request)),
      receivedAt: performance.now(),
    }
    this.calls.push(call)
    const failing = this.faults.failWith !== undefined && (this.faults.failCalls === undefined || this.faults.failCalls > 0)
    const failWith = this.faults.failWith
    if (failing && this.faults.failCalls !== undefined) this.faults.failCalls--
    const answer = () => {
      call.answeredAt = performance.now()
      if (failing && failWith !== undefined) {
        call.outcome = status[failWith]
        callback({ code: failWith, details: `stand-in fault: ${status[failWith]}` }, null)
        return
      }
      call.outcome = 'OK'
      this.written.push(...call.entries)
      callback(null, {})
    }
    const latency = this.faults.latencyMs ?? 0
    if (latency <= 0) return answer()
    const timer = setTimeout(() => {
      this.parked.delete(timer)
      answer()
    }, latency)
    this.parked.add(timer)
  }
}

let definition: ServiceDefinition | undefined

/** LoggingServiceV2 from the .proto files of @google-cloud/logging's API client; google/api and friends from google-gax. */
export function loggingServiceDefinition(): ServiceDefinition {
  if (definition) return definition
  const require = createRequire(import.meta.url)
  const fromLogging = createRequire(require.resolve('@google-cloud/logging'))
  const apiProtos = join(dirname(fromLogging.resolve('@google-cloud/logging-api/package.json')), 'build', 'protos')
  const gaxProtos = join(dirname(fromLogging.resolve('google-gax/package.json')), 'build', 'protos')
  const packageDefinition = protoLoader.loadSync('google/logging/v2/logging.proto', {
    includeDirs: [apiProtos, gaxProtos],
    longs: Number,
    enums: String,
    defaults: false,
    oneofs: true,
  })
  const service = packageDefinition[SERVICE]
  if (!service || !('WriteLogEntries' in service)) throw new Error(`${SERVICE} not found under ${apiProtos}`)
  definition = service as ServiceDefinition
  return definition
}

interface WireTimestamp {
  seconds?: number
  nanos?: number
}

interface WireEntry {
  logName?: string
  resource?: unknown
  severity?: string
  insertId?: string
  labels?: Record<string, string>
  timestamp?: WireTimestamp
  trace?: string
  spanId?: string
  operation?: { id: string; producer: string }
  jsonPayload?: WireStruct
  textPayload?: string
}

interface WriteRequest {
  logName?: string
  resource?: unknown
  labels?: Record<string, string>
  entries?: WireEntry[]
  partialSuccess?: boolean
}

interface WireStruct {
  fields?: Record<string, WireValue>
}

interface WireValue {
  nullValue?: unknown
  numberValue?: number
  stringValue?: string
  boolValue?: boolean
  structValue?: WireStruct
  listValue?: { values?: WireValue[] }
}

function recordEntry(entry: WireEntry, request: WriteRequest): RecordedEntry {
  const recorded: RecordedEntry = {
    logName: entry.logName || request.logName || '',
    resource: entry.resource ?? request.resource,
    severity: entry.severity ?? 'DEFAULT',
    insertId: entry.insertId ?? '',
    // Request labels are defaults: an entry's own label wins.
    labels: { ...request.labels, ...entry.labels },
    timestamp: rfc3339Nanos(entry.timestamp),
  }
  if (entry.trace) recorded.trace = entry.trace
  if (entry.spanId) recorded.spanId = entry.spanId
  if (entry.operation) recorded.operation = { id: entry.operation.id, producer: entry.operation.producer }
  if (entry.jsonPayload) recorded.jsonPayload = structToJson(entry.jsonPayload)
  if (entry.textPayload !== undefined) recorded.textPayload = entry.textPayload
  return recorded
}

function rfc3339Nanos(timestamp: WireTimestamp | undefined): string {
  const seconds = Number(timestamp?.seconds ?? 0)
  const nanos = Number(timestamp?.nanos ?? 0)
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, `.${String(nanos).padStart(9, '0')}Z`)
}

function structToJson(struct: WireStruct): Record<string, unknown> {
  const object: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(struct.fields ?? {})) object[name] = valueToJson(value)
  return object
}

function valueToJson(value: WireValue): unknown {
  if (value.structValue !== undefined) return structToJson(value.structValue)
  if (value.listValue !== undefined) return (value.listValue.values ?? []).map(valueToJson)
  if (value.stringValue !== undefined) return value.stringValue
  if (value.numberValue !== undefined) return value.numberValue
  if (value.boolValue !== undefined) return value.boolValue
  return null
}
