// The student trained on gold labels only (w/o KD).
(import 'student.libsonnet')(decoder='crf')
