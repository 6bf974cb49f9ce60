# bench/study.sh: page tables of backends that each read the whole table,
# over as many idle backends
# data: pg n idle_bytes pool_bytes bufmgr_bytes   (datadir, outprefix given with -e)
set terminal pngcairo size 800,500 font ",10" noenhanced
set output outprefix.'-pagetables.png'
set title 'Page tables (sum of VmPTE) of N backends that each read the whole table, over N idle ones'
set xlabel 'backends'
set ylabel 'MB over idle backends'
set key top left
set grid
set xtics 1
f = datadir.'/study-pagetables.dat'
plot f using (strcol(1) eq '4k' ? $2 : 1/0):(($4-$3)/1048576) with linespoints lw 2 title 'pool, 4 kB', \
     f using (strcol(1) eq '4k' ? $2 : 1/0):(($5-$3)/1048576) with linespoints lw 2 title 'bufmgr, 4 kB', \
     f using (strcol(1) eq 'hugetlb' ? $2 : 1/0):(($4-$3)/1048576) with linespoints lw 2 dt 2 title 'pool, hugetlb (page tables shared)', \
     f using (strcol(1) eq 'hugetlb' ? $2 : 1/0):(($5-$3)/1048576) with linespoints lw 2 dt 2 title 'bufmgr, huge_pages = on'
