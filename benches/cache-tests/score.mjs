// Scores cache-tests results the way the suite's own display does
// (lib/display.mjs determineTestResult), per kind of test, for each
// results file given, then lists the required and optimal tests that the
// first target fails and the second passes, and the rest the first fails.
//
//   node score.mjs SUITE_DIR NAME=FILE NAME=FILE
import fs from 'fs'
import path from 'path'

const [suiteDir, ...targets] = process.argv.slice(2)
const { default: tests } = await import(path.join(suiteDir, 'tests/index.mjs'))
const { default: surrogate } = await import(path.join(suiteDir, 'tests/surrogate-control.mjs'))
const display = await import(path.join(suiteDir, 'lib/display.mjs'))
tests.push(surrogate)

const all = tests.flatMap(suite => suite.tests.filter(t => t.browser_only !== true))
const named = targets.map(arg => {
  const [name, file] = arg.split('=')
  return { name, results: JSON.parse(fs.readFileSync(file, 'utf8')) }
})
// The suite's symbols: ✅ pass, Y yes (a check), ⛔️ fail, ⚠️ optional fail,
// N no; anything else is a harness, setup or dependency failure, or untested.
const verdict = (results, id) => display.determineTestResult(tests, id, results)[2]
const passes = (results, id) => ['✅', 'Y'].includes(verdict(results, id))

const kinds = ['required', 'optimal', 'check']
console.log(['target', ...kinds.map(k => `${k} passed`), 'harness/setup/dependency'].join('\t'))
for (const { name, results } of named) {
  const cells = kinds.map(kind => {
    const of = all.filter(t => (t.kind || 'required') === kind)
    return `${of.filter(t => passes(results, t.id)).length}/${of.length}`
  })
  const other = all.filter(t => !['✅', 'Y', '⛔️', '⚠️', 'N'].includes(verdict(results, t.id))).length
  console.log([name, ...cells, other].join('\t'))
}
if (named.length === 2) {
  const [a, b] = named
  const list = (title, ids) => {
    console.log(`\n${title}: ${ids.length}`)
    for (const t of ids) console.log(`  ${t.id} [${t.kind || 'required'}] ${verdict(a.results, t.id)}: ${JSON.stringify(a.results[t.id])}`)
  }
  const graded = all.filter(t => (t.kind || 'required') !== 'check')
  list(`${a.name} fails, ${b.name} passes`, graded.filter(t => passes(b.results, t.id) && !passes(a.results, t.id)))
  list(`both fail`, graded.filter(t => !passes(b.results, t.id) && !passes(a.results, t.id)))
}
