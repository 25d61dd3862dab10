/**
 * The `maskgen` binary: one yargs program, one file per subcommand under src/cli/.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { globalOptions, reportAndExit } from './common.js';
import { commands } from './commands.js';

const program = globalOptions(yargs(hideBin(process.argv)))
  .scriptName('maskgen')
  .usage('$0 <command> [options]\n\nText-to-image generation the way Muse does it: ViT-VQGAN tokens, a masked transformer, parallel decoding.')
  .strict()
  .demandCommand(1, 'name a command (see maskgen --help)')
  .recommendCommands()
  .help()
  .alias('h', 'help')
  .version()
  .wrap(Math.min(110, process.stdout.columns ?? 110))
  .fail((msg, err) => {
    if (err) reportAndExit(err);
    process.stderr.write(`maskgen: error: ${msg}\n`);
    process.exit(1);
  });

for (const c of commands) program.command(c as never);

await program.parseAsync();
