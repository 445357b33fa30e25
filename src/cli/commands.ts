/** Every `keywrap` command, in the order `keywrap help` lists them. */
import { auditPublicKeyCommand } from './audit-public-key.js'
import { auditVerifyCommand } from './audit-verify.js'
import { auditVersionsCommand } from './audit-versions.js'
import type { Command } from './command.js'
import { decryptCommand } from './decrypt.js'
import { encryptCommand } from './encrypt.js'
import { rewrapCommand } from './rewrap.js'
import { keysRetireCommand } from './keys-retire.js'
import { kmsPluginCommand } from './kms-plugin.js'
import { keysDisableCommand, keysEnableCommand, keysListCommand, keysRotateCommand } from './keys.js'
import { tokenCommand } from './token.js'

export const COMMANDS: readonly Command[] = [
  tokenCommand,
  keysListCommand,
  keysRotateCommand,
  keysDisableCommand,
  keysEnableCommand,
  keysRetireCommand,
  auditVerifyCommand,
  auditPublicKeyCommand,
  auditVersionsCommand,
  rewrapCommand,
  encryptCommand,
  decryptCommand,
  kmsPluginCommand,
]
