// Starts the svc language server (`svc lsp`) for .svc files.
//
// Plain CommonJS, loaded by VS Code as it is: no build step.

'use strict';

const os = require('os');
const path = require('path');
const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;
/** @type {vscode.OutputChannel | undefined} */
let output;
/** @type {vscode.FileSystemWatcher | undefined} */
let watcher;
/** Starts and stops run one after another, never overlapping. */
let queue = Promise.resolve();

/** The `svc` executable from `svc.path`; `~/...` is your home directory. */
function executable() {
  const configured = (vscode.workspace.getConfiguration('svc').get('path') || '').trim();
  if (configured === '') {
    return 'svc';
  }
  if (configured === '~' || configured.startsWith('~/') || configured.startsWith('~\\')) {
    return path.join(os.homedir(), configured.slice(1));
  }
  return configured;
}

function enabled() {
  return vscode.workspace.getConfiguration('svc').get('lsp.enable', true);
}

async function start() {
  if (client || !enabled()) {
    return;
  }
  const command = executable();
  // Standard input and output, with no transport given: naming the stdio
  // transport would add `--stdio` to the arguments, and `svc lsp` takes none.
  const serverOptions = { command, args: ['lsp'] };
  const clientOptions = {
    documentSelector: [{ scheme: 'file', language: 'svc' }],
    // A .svc file created, changed or deleted outside the editor changes the
    // program of its folder: the server hears of it.
    synchronize: { fileEvents: watcher },
    outputChannel: output,
  };
  const started = new LanguageClient('svc', 'svc', serverOptions, clientOptions);
  client = started;
  try {
    await started.start();
  } catch (error) {
    if (client === started) {
      client = undefined;
    }
    const reason = error && error.message ? error.message : String(error);
    // Not awaited: a restart must not wait for the message to be closed.
    vscode.window
      .showErrorMessage(
        `svc: could not start the language server \`${command} lsp\` (${reason}). ` +
          'Set svc.path to the svc executable, or turn svc.lsp.enable off.',
        'Open Settings'
      )
      .then((choice) => {
        if (choice === 'Open Settings') {
          vscode.commands.executeCommand('workbench.action.openSettings', 'svc.path');
        }
      });
  }
}

async function stop() {
  const running = client;
  client = undefined;
  if (running) {
    try {
      await running.dispose();
    } catch (error) {
      // The server may already be gone; nothing is left to stop.
    }
  }
}

/** Stops the server if it runs, then starts it if `svc.lsp.enable` is on. */
function restart() {
  queue = queue.then(stop).then(start);
  return queue;
}

/** @param {vscode.ExtensionContext} context */
function activate(context) {
  output = vscode.window.createOutputChannel('svc');
  watcher = vscode.workspace.createFileSystemWatcher('**/*.svc');
  context.subscriptions.push(
    output,
    watcher,
    vscode.commands.registerCommand('svc.restartServer', restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('svc.path') || event.affectsConfiguration('svc.lsp.enable')) {
        restart();
      }
    })
  );
  queue = queue.then(start);
  return queue;
}

function deactivate() {
  queue = queue.then(stop);
  return queue;
}

module.exports = { activate, deactivate };
