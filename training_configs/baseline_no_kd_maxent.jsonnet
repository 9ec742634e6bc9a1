// The MaxEnt student trained on gold labels only (w/o KD).
(import 'student.libsonnet')(decoder='maxent')
