;; Loop: spins forever. The sandbox stops it when the run's time limit is reached.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      (br $forever))))
