import { randomBytesPooled } from './random-pool.js'

export const DATA_KEY_SIZES = [16, 24, 32, 64] as const
export type DataKeySize = (typeof DATA_KEY_SIZES)[number]

export function generateDataKey(bytes: DataKeySize): Buffer {
  return randomBytesPooled(bytes)
}
