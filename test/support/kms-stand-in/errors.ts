// gRPC errors worded the way Cloud KMS words them.
import { status, type StatusObject } from '@grpc/grpc-js'

export const PLAINTEXT_MAX_BYTES = 64 * 1024
export const AAD_MAX_BYTES = 64 * 1024

export class KmsError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message)
    this.name = 'KmsError'
  }

  toStatus(): Partial<StatusObject> {
    return { code: this.code, details: this.message }
  }

  static invalidArgument(message: string): KmsError {
    return new KmsError(status.INVALID_ARGUMENT, message)
  }

  static notFound(name: string): KmsError {
    return new KmsError(status.NOT_FOUND, `Resource '${name}' was not found.`)
  }

  static permissionDenied(permission: string, name: string): KmsError {
    return new KmsError(status.PERMISSION_DENIED, `Permission '${permission}' denied on resource '${name}' (or it may not exist).`)
  }

  static versionNotEnabled(versionName: string, state: string): KmsError {
    return new KmsError(status.FAILED_PRECONDITION, `${versionName} is not enabled, current state is: ${state}.`)
  }

  static checksumMismatch(checksumField: string, dataField: string): KmsError {
    return KmsError.invalidArgument(`The checksum in field ${checksumField} did not match the data in field ${dataField}.`)
  }

  static fieldTooLong(field: string, max: number, actual: number): KmsError {
    return KmsError.invalidArgument(`Request field ${field} must have length of at least 0, but not more than ${max}. Provided value had length ${actual}.`)
  }

  static invalidCiphertext(): KmsError {
    return KmsError.invalidArgument('Decryption failed: the ciphertext is invalid.')
  }

  static wrongKeyForCiphertext(): KmsError {
    return KmsError.invalidArgument("Decryption failed: verify that 'name' refers to the correct CryptoKey.")
  }

  static unavailable(): KmsError {
    return new KmsError(status.UNAVAILABLE, 'The service is currently unavailable.')
  }

  static quotaExceeded(): KmsError {
    return new KmsError(
      status.RESOURCE_EXHAUSTED,
      "Quota exceeded for quota metric 'Cryptographic requests' and limit 'Cryptographic requests per minute' " +
        "of service 'cloudkms.googleapis.com' for consumer 'project_number:0'.",
    )
  }

  static unimplemented(method: string): KmsError {
    return new KmsError(status.UNIMPLEMENTED, `Method ${method} is not implemented by the Cloud KMS stand-in.`)
  }
}
